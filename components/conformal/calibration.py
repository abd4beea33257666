"""Conformal prediction with MAPIE 1.x on prefit models: calibrated sets (classifiers), intervals (regressors).

    calibrator = calibrate_classifier(model, X_cal, y_cal, seen={"training": X_train}, method="aps",
                                      confidence_levels=(0.9, 0.95))
    sets = calibrator.predict_sets(model.predict_proba(X_new))      # bool (n, classes, levels)

Classifiers are conformalized on their probabilities: the model runs once over the calibration data and MAPIE
sees a pass-through estimator, so a served model needs one forward pass for label, probabilities and set, and a
benchmark can conformalize many splits of cached probabilities. Regressors are cheap, so MAPIE calls them as they
are (CQR through the model's ``predict_quantiles(X, quantiles)`` where it has one).

Coverage holds only if the calibration rows are exchangeable with future rows, which fails when the model has
seen them: ``calibrate_*`` refuse calibration data whose rows also appear (same content hash, or same id) in
data the model was trained or early-stopped on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from components.conformal.drift import DriftResult, DriftTest, classifier_scores

# the section's classes, as components/conformal/stage.py imports them from here
from components.conformal.settings import (  # noqa: F401
    CLASSIFICATION_METHODS,
    REGRESSION_METHODS,
    ConformalSettings,
    Method,
)
from components.errors import DlfolioError

# ---------------------------------------------------------------------------------------------------------------
# Calibration data must be new to the model.


class CalibrationOverlapError(DlfolioError, ValueError):
    """Calibration rows that the model has already seen: coverage would be optimistic."""


def row_hashes(X) -> np.ndarray:
    """One content hash per row (per image for image arrays): equal rows give equal hashes."""
    X = np.ascontiguousarray(np.asarray(X))
    rows = X.reshape(len(X), -1) if X.ndim > 1 else X.reshape(-1, 1)
    if rows.dtype == object:
        return np.array([hashlib.blake2b(repr(tuple(r)).encode(), digest_size=16).hexdigest() for r in rows])
    return np.array([hashlib.blake2b(r.tobytes(), digest_size=16).hexdigest() for r in rows])


def check_unseen(
    X_cal, seen: Mapping[str, Any], *, ids_cal=None, ids_seen: Mapping[str, Any] | None = None, names_cal=None
) -> None:
    """Raise ``CalibrationOverlapError`` if a calibration row also occurs in any of ``seen`` (name -> rows).

    Rows are compared by content hash, or by ``ids`` (e.g. source row numbers) where given: tabular data may
    repeat a value legitimately, an id never repeats. ``names_cal`` (e.g. file paths) name the offending rows.
    """
    if not any(X is not None and len(X) for X in seen.values()):
        raise CalibrationOverlapError(
            "no training data given to check the calibration data against; pass seen={'training': X_train, ...}"
        )
    keys_cal = np.asarray(ids_cal) if ids_cal is not None else row_hashes(X_cal)
    for name, X in seen.items():
        if X is None or len(X) == 0:
            continue
        if ids_cal is None:
            keys = row_hashes(X)
        elif ids_seen is None or ids_seen.get(name) is None:
            raise ValueError(f"calibration rows carry ids but the {name} rows do not: give ids for both or neither")
        else:
            keys = np.asarray(ids_seen[name])
        clash = np.flatnonzero(np.isin(keys_cal, keys))
        if len(clash):
            how = "ids" if ids_cal is not None else "identical content"
            first = clash[:5].tolist() if names_cal is None else [str(names_cal[i]) for i in clash[:5]]
            raise CalibrationOverlapError(
                f"{len(clash)} of {len(keys_cal)} calibration rows also occur in the {name} data ({how}; first "
                f"calibration rows: {first}). Conformal coverage holds only on data the model never saw: calibrate "
                f"on a split held out from training and early stopping (or remove the duplicated rows/files)."
            )


# ---------------------------------------------------------------------------------------------------------------
# Classifiers: sets from probabilities.


class ProbabilityPassThrough(ClassifierMixin, BaseEstimator):
    """A prefit 'classifier' whose input is already a probability matrix: how MAPIE sees a model's outputs."""

    def __init__(self, classes=None):
        self.classes = classes

    def fit(self, X=None, y=None):
        self.classes_ = np.asarray(self.classes)
        self.n_features_in_ = len(self.classes_)
        return self

    def predict_proba(self, X) -> np.ndarray:
        return np.asarray(X, dtype=float)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.asarray(X).argmax(axis=1)]


@dataclass
class ConformalClassifier:
    """Split-conformal prediction sets for one method at one or more confidence levels (MAPIE underneath)."""

    classes: np.ndarray
    method: str = "lac"
    confidence_levels: tuple[float, ...] = (0.9,)
    randomized: bool = False
    random_state: int = 0
    drift_alpha: float = 0.01
    drift_test: str = "ks"
    mapie_: Any = field(default=None, repr=False)
    drift_: DriftTest | None = field(default=None, repr=False)  # the calibration rows' label-free scores

    def fit(self, proba_cal: np.ndarray, y_cal) -> ConformalClassifier:
        from mapie.classification import SplitConformalClassifier

        if self.method not in CLASSIFICATION_METHODS:
            raise ValueError(
                f"{self.method!r} is not a classifier method; choose from {', '.join(CLASSIFICATION_METHODS)}"
            )
        self.classes = np.asarray(self.classes)
        if len(self.classes) == 2 and self.method != "lac":
            raise ValueError(
                f"MAPIE calibrates two-class problems with 'lac' only (got {self.method!r}); "
                "use methods: [lac] for a binary project"
            )
        unknown = np.setdiff1d(np.asarray(y_cal), self.classes)
        if len(unknown):
            raise ValueError(
                f"calibration labels {unknown[:5].tolist()} are not among the model's classes {self.classes.tolist()}"
            )
        _check_probabilities(proba_cal, len(self.classes), "calibration")
        self.mapie_ = SplitConformalClassifier(
            ProbabilityPassThrough(self.classes).fit(),
            confidence_level=list(self.confidence_levels),
            conformity_score=self.method,
            prefit=True,
            random_state=self.random_state,
        )
        self.mapie_.conformalize(proba_cal, np.asarray(y_cal))
        self.drift_ = DriftTest.fit(classifier_scores(proba_cal), self.drift_alpha, self.drift_test)
        return self

    def drift(self, proba: np.ndarray) -> DriftResult:
        """Whether a batch's label-free scores (1 - max probability) still look like the calibration rows'."""
        return self.drift_.check(classifier_scores(proba))

    def predict_sets(self, proba: np.ndarray) -> np.ndarray:
        """Membership of each class in each row's set: bool array (n, classes, levels)."""
        _check_probabilities(proba, len(self.classes), "input")
        params = {"include_last_label": "randomized" if self.randomized else True}
        _, sets = self.mapie_.predict_set(
            proba, conformity_score_params=params if self.method in ("aps", "raps") else None
        )
        return sets.astype(bool)

    def at(self, confidence: float) -> int:
        return level_index(self.confidence_levels, confidence)


def level_index(levels: Sequence[float], confidence: float) -> int:
    """Position of ``confidence`` among the calibrated levels (the last axis of sets and intervals)."""
    if confidence not in levels:
        raise ValueError(f"confidence {confidence} was not calibrated; levels are {list(levels)}")
    return list(levels).index(confidence)


def _check_probabilities(proba, n_classes: int, what: str) -> None:
    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape[1] != n_classes:
        raise ValueError(f"{what} probabilities must have shape (n, {n_classes}), got {proba.shape}")
    if not np.allclose(proba.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError(f"{what} probabilities do not sum to one in every row")


def calibrate_classifier(
    model,
    X_cal,
    y_cal,
    *,
    seen: Mapping[str, Any],
    method: str = "lac",
    confidence_levels: Sequence[float] = (0.9,),
    randomized: bool = False,
    random_state: int = 0,
    ids_cal=None,
    ids_seen=None,
) -> ConformalClassifier:
    """Calibrate a prefit classifier (``predict_proba`` and ``classes_``) on rows it has never seen."""
    check_unseen(X_cal, seen, ids_cal=ids_cal, ids_seen=ids_seen)
    return ConformalClassifier(model.classes_, method, tuple(confidence_levels), randomized, random_state).fit(
        model.predict_proba(X_cal), y_cal
    )


def set_metrics(sets: np.ndarray, y_true, classes) -> dict[str, float]:
    """Coverage, mean set size, singleton and empty-set rates of bool sets (n, classes) for labels ``y_true``."""
    y_idx = np.searchsorted(np.asarray(classes), np.asarray(y_true))
    size = sets.sum(axis=1)
    return {
        "coverage": float(sets[np.arange(len(y_idx)), y_idx].mean()),
        "mean_set_size": float(size.mean()),
        "singleton_rate": float((size == 1).mean()),
        "empty_rate": float((size == 0).mean()),
    }


def per_class_coverage(sets: np.ndarray, y_true, classes) -> pd.DataFrame:
    classes = np.asarray(classes)
    y_idx = np.searchsorted(classes, np.asarray(y_true))
    covered = sets[np.arange(len(y_idx)), y_idx]
    return pd.DataFrame(
        [
            {
                "class": str(c),
                "n": int((y_idx == j).sum()),
                "coverage": float(covered[y_idx == j].mean()) if (y_idx == j).any() else float("nan"),
            }
            for j, c in enumerate(classes)
        ]
    )


# ---------------------------------------------------------------------------------------------------------------
# Regressors: intervals.


class QuantileView(RegressorMixin, BaseEstimator):
    """One quantile of a prefit model with ``predict_quantiles(X, quantiles)``, as a regressor MAPIE's CQR takes."""

    def __init__(self, model=None, quantile: float = 0.5):
        self.model = model
        self.quantile = quantile

    def fit(self, X=None, y=None):
        self.fitted_ = True
        return self

    def predict(self, X) -> np.ndarray:
        return np.asarray(self.model.predict_quantiles(X, [self.quantile]))[:, 0]


class ColumnPassThrough(RegressorMixin, BaseEstimator):
    """A prefit 'regressor' whose input is already the model's prediction matrix (n, k): it returns column
    ``column``. How MAPIE sees one output of a multi-output model that ran once over the rows."""

    def __init__(self, column: int = 0, outputs: int = 1):
        self.column = column
        self.outputs = outputs

    def fit(self, X=None, y=None):
        self.n_features_in_ = self.outputs
        return self

    def predict(self, X) -> np.ndarray:
        return np.asarray(X, dtype=float)[:, self.column]


@dataclass
class ConformalRegressor:
    """Split-conformal intervals: absolute residuals around ``predict``, or CQR around the model's quantiles.

    A model whose ``predict`` returns k outputs per row (targets (n, k), NaN where a target is missing) gets one
    calibration per output, on the rows where that output is present; MAPIE then sees the prediction matrix
    through ``ColumnPassThrough``, so the model runs once per batch however many outputs it has.
    """

    model: Any
    method: str = "absolute"
    confidence_levels: tuple[float, ...] = (0.9,)
    drift_alpha: float = 0.01
    drift_test: str = "ks"
    mapie_: list[Any] = field(default_factory=list, repr=False)
    outputs_: int | None = None  # None: one output (predict returns (n,)); else k
    drift_: DriftTest | None = field(default=None, repr=False)  # the calibration rows' predictions

    def fit(self, X_cal, y_cal) -> ConformalRegressor:
        from mapie.regression import ConformalizedQuantileRegressor, SplitConformalRegressor

        y_cal = np.asarray(y_cal, dtype=float)
        levels = list(self.confidence_levels)
        if y_cal.ndim == 2:
            if self.method != "absolute":
                raise ValueError(f"{self.method!r} calibrates one output; a multi-output model takes 'absolute'")
            predicted = np.asarray(self.model.predict(X_cal), dtype=float)
            self.outputs_ = y_cal.shape[1]
            self.mapie_, self.levels_ = [], []
            for j in range(self.outputs_):
                present = ~np.isnan(y_cal[:, j])
                n = int(present.sum())
                # Levels that n targets can calibrate (MAPIE's condition); the others get an infinite interval,
                # the only one with the coverage guarantee on so few rows.
                ok = [c for c in levels if n > 1 / (1 - c) and n > 1 / c]
                self.levels_.append(ok)
                self.mapie_.append(
                    SplitConformalRegressor(
                        ColumnPassThrough(j, self.outputs_).fit(),
                        confidence_level=ok,
                        conformity_score="absolute",
                        prefit=True,
                    ).conformalize(predicted[present], y_cal[present, j])
                    if ok
                    else None
                )
            self.drift_ = DriftTest.fit(predicted, self.drift_alpha, self.drift_test)
            return self
        if self.method == "absolute":
            self.mapie_ = [
                SplitConformalRegressor(
                    self.model, confidence_level=levels, conformity_score="absolute", prefit=True
                ).conformalize(X_cal, y_cal)
            ]
        elif self.method == "cqr":
            if not hasattr(self.model, "predict_quantiles"):
                raise ValueError(
                    f"CQR needs a quantile model: {type(self.model).__name__} has no "
                    "predict_quantiles(X, quantiles); use method 'absolute'"
                )
            # MAPIE's prefit CQR takes the lower, upper and median models, one confidence level per object.
            self.mapie_ = [
                ConformalizedQuantileRegressor(
                    [QuantileView(self.model, q).fit() for q in ((1 - c) / 2, (1 + c) / 2, 0.5)],
                    confidence_level=c,
                    prefit=True,
                ).conformalize(X_cal, y_cal)
                for c in self.confidence_levels
            ]
        else:
            raise ValueError(f"{self.method!r} is not a regressor method; choose from {', '.join(REGRESSION_METHODS)}")
        self.drift_ = DriftTest.fit(
            np.asarray(self.model.predict(X_cal), dtype=float), self.drift_alpha, self.drift_test
        )
        return self

    def predict_intervals(self, X, *, predicted=None) -> tuple[np.ndarray, np.ndarray]:
        """Point predictions (n,) and intervals (n, 2, levels): [:, 0] lower, [:, 1] upper bounds. A multi-output
        model: points (n, k) and intervals (n, 2, levels, k), from ``predicted`` (n, k) when given."""
        if getattr(self, "outputs_", None) is not None:
            point = np.asarray(self.model.predict(X) if predicted is None else predicted, dtype=float)
            intervals = np.empty((len(point), 2, len(self.confidence_levels), self.outputs_))
            intervals[:, 0], intervals[:, 1] = -np.inf, np.inf
            for j, (mapie, ok) in enumerate(zip(self.mapie_, self.levels_)):
                if mapie is not None:
                    at = [self.confidence_levels.index(c) for c in ok]
                    intervals[:, :, at, j] = np.asarray(mapie.predict_interval(point)[1], dtype=float)
            return point, intervals
        point = np.asarray(self.model.predict(X), dtype=float)
        parts = [m.predict_interval(X) for m in self.mapie_]
        return point, np.concatenate([np.asarray(iv, dtype=float) for _, iv in parts], axis=2)

    def drift(self, X=None, *, predicted=None) -> DriftResult:
        """Whether a batch's predictions still look like the calibration rows' (a label-free covariate check)."""
        return self.drift_.check(np.asarray(self.model.predict(X) if predicted is None else predicted, dtype=float))

    def at(self, confidence: float) -> int:
        return level_index(self.confidence_levels, confidence)


def calibrate_regressor(
    model,
    X_cal,
    y_cal,
    *,
    seen: Mapping[str, Any],
    method: str = "absolute",
    confidence_levels: Sequence[float] = (0.9,),
    ids_cal=None,
    ids_seen=None,
) -> ConformalRegressor:
    """Calibrate a prefit regressor (``predict``; ``predict_quantiles`` for CQR) on rows it has never seen."""
    check_unseen(X_cal, seen, ids_cal=ids_cal, ids_seen=ids_seen)
    return ConformalRegressor(model, method, tuple(confidence_levels)).fit(X_cal, y_cal)


def interval_metrics(intervals: np.ndarray, y_true) -> dict[str, float]:
    """Coverage and width of intervals (n, 2) for targets ``y_true`` (n,); or (n, 2, k) for targets (n, k), over
    the targets present (not NaN)."""
    y = np.asarray(y_true, dtype=float)
    lower, upper = intervals[:, 0], intervals[:, 1]
    present = ~np.isnan(y)
    y, lower, upper = y[present], lower[present], upper[present]
    width = upper - lower
    return {
        "coverage": float(((y >= lower) & (y <= upper)).mean()),
        "mean_width": float(width.mean()),
        "median_width": float(np.median(width)),
    }
