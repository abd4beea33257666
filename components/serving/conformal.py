"""What every served predictor with a conformal calibrator adds to its frame: one implementation, mixed in.

``with_conformal(calibrator, confidence)`` returns a copy that carries the fitted calibrator
(components/conformal/calibration.py); the predictor then calls ``add_sets`` (classifiers, on the probabilities
it already computed) or ``add_intervals`` (regressors, on its point predictions) before returning. Both add the
batch's drift warning: ``drift_pvalue`` (the two-sample test of the batch's label-free conformity scores against
the calibration rows', the same value on every row of the batch) and ``drift_warning`` (p below the calibrated
``drift_alpha``). Predictors pickled before this mixin (no calibrator attribute) serve as before.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np

from components.serving.predictor import Predictor

if TYPE_CHECKING:  # numpy only at import: components/evaluation/uncertainty.py mixes this in
    import pandas as pd


class ServesConformal(Predictor):
    conformal = None  # a ConformalClassifier / ConformalRegressor once with_conformal attached one
    confidence: float | None = None

    def with_conformal(self, calibrator, confidence: float):
        calibrator.at(confidence)  # refuse a level that was not calibrated now, not at serving time
        served = copy.copy(self)
        served.conformal, served.confidence = calibrator, confidence
        return served

    @property
    def pip_requirements(self) -> list[str]:
        return ["mapie"] if self.conformal is not None else []

    def add_sets(self, frame: pd.DataFrame, proba: np.ndarray, names) -> pd.DataFrame:
        """``prediction_set`` (class names, in the model's class order) and ``set_size``, then the drift columns."""
        if self.conformal is None:
            return frame
        sets = self.conformal.predict_sets(proba)[:, :, self.conformal.at(self.confidence)]
        names = np.asarray(list(names), dtype=object)
        frame["prediction_set"] = [names[row].tolist() for row in sets]
        frame["set_size"] = sets.sum(axis=1)
        if getattr(self.conformal, "drift_", None) is not None:  # calibrators pickled before the warning lack it
            self._add_drift(frame, self.conformal.drift(proba))
        return frame

    def add_intervals(self, frame: pd.DataFrame, X, columns=None, *, predicted=None) -> pd.DataFrame:
        """``lower`` / ``upper`` (one output), or ``<name>_lower`` / ``<name>_upper`` per output (``columns``: the
        outputs' names in order), then the drift columns. A multi-output predictor passes its ``predicted``
        matrix, so the model does not run twice."""
        if self.conformal is None:
            return frame
        point, intervals = self.conformal.predict_intervals(X, predicted=predicted)
        level = self.conformal.at(self.confidence)
        if intervals.ndim == 3:
            frame["lower"], frame["upper"] = intervals[:, 0, level], intervals[:, 1, level]
        else:
            for j, name in enumerate(columns):
                frame[f"{name}_lower"], frame[f"{name}_upper"] = intervals[:, 0, level, j], intervals[:, 1, level, j]
        if getattr(self.conformal, "drift_", None) is not None:
            self._add_drift(frame, self.conformal.drift(predicted=point))
        return frame

    @staticmethod
    def _add_drift(frame: pd.DataFrame, drift) -> None:
        frame["drift_pvalue"] = np.full(len(frame), drift.pvalue)
        frame["drift_warning"] = np.full(len(frame), drift.warning)
