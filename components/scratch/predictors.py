"""What the registry serves for the NumPy projects: picklable objects with ``predict_frame(inputs)``.

They wrap the fitted scratch models and turn raw inputs (Celsius values, uint8 images of any size) into a
DataFrame; ``components.serving.pyfunc_model.PredictorModel`` loads them inside the MLflow pyfunc model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.serving.inputs import as_float_matrix, as_image_batch


class RegressionPredictor:
    """Celsius values, shape (n,) or (n, 1) -> a ``fahrenheit`` column (named by ``target``); with a conformal
    calibrator attached (``with_conformal``) also ``lower`` and ``upper``, the calibrated interval."""

    def __init__(
        self,
        model,
        feature: str = "celsius",
        target: str = "fahrenheit",
        conformal=None,
        confidence: float | None = None,
    ):
        self.model, self.feature, self.target = model, feature, target
        self.conformal, self.confidence = conformal, confidence  # a components.conformal.calibration.ConformalRegressor

    def with_conformal(self, calibrator, confidence: float) -> RegressionPredictor:
        calibrator.at(confidence)  # refuse an uncalibrated level now, not at serving time
        return RegressionPredictor(self.model, self.feature, self.target, calibrator, confidence)

    @property
    def pip_requirements(self) -> list[str]:
        return ["mapie"] if self.conformal is not None else []

    def predict_frame(self, inputs) -> pd.DataFrame:
        x = as_float_matrix(inputs, [self.feature])[:, 0]
        frame = pd.DataFrame({self.feature: x, self.target: self.model.predict(x)})
        if self.conformal is not None:
            _, intervals = self.conformal.predict_intervals(x[:, None])
            level = self.conformal.at(self.confidence)
            frame["lower"], frame["upper"] = intervals[:, 0, level], intervals[:, 1, level]
        return frame


class ImagePredictor:
    """uint8 images -> label, its probability and one ``p_<class>`` column per class."""

    def __init__(self, model, shape: tuple[int, ...], class_names: dict | None = None):
        self.model, self.shape, self.class_names = model, tuple(shape), dict(class_names or {})

    def predict_frame(self, images) -> pd.DataFrame:
        channels = self.shape[2] if len(self.shape) == 3 else None  # (h, w): grey
        proba = self.model.predict_proba(as_image_batch(images, self.shape[:2], channels))
        names = [str(self.class_names.get(c, c)) for c in self.model.classes_.tolist()]
        frame = pd.DataFrame({"label": np.asarray(names)[proba.argmax(1)], "probability": proba.max(1)})
        for j, name in enumerate(names):
            frame[f"p_{name}"] = proba[:, j]
        return frame
