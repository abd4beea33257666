"""What the registry serves for the NumPy projects: picklable objects with ``predict_frame(inputs)``.

They wrap the fitted scratch models and turn raw inputs (Celsius values, uint8 images of any size) into a
DataFrame; ``components.serving.pyfunc_model.PredictorModel`` loads them inside the MLflow pyfunc model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.serving.conformal import ServesConformal
from components.serving.inputs import as_float_matrix, as_image_batch


class RegressionPredictor(ServesConformal):
    """Celsius values, shape (n,) or (n, 1) -> a ``fahrenheit`` column (named by ``target``); with a conformal
    calibrator attached (``with_conformal``) also ``lower`` and ``upper``, the calibrated interval, and the drift
    warning."""

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

    def predict_frame(self, inputs) -> pd.DataFrame:
        x = as_float_matrix(inputs, [self.feature])[:, 0]
        frame = pd.DataFrame({self.feature: x, self.target: self.model.predict(x)})
        return self.add_intervals(frame, x[:, None])


class ImagePredictor(ServesConformal):
    """uint8 images -> label, its probability and one ``p_<class>`` column per class; with a conformal calibrator
    attached (``with_conformal``) also ``prediction_set`` (class names), ``set_size`` and the drift warning."""

    def __init__(self, model, shape: tuple[int, ...], class_names: dict | None = None):
        self.model, self.shape, self.class_names = model, tuple(shape), dict(class_names or {})

    def predict_frame(self, images) -> pd.DataFrame:
        channels = self.shape[2] if len(self.shape) == 3 else None  # (h, w): grey
        proba = self.model.predict_proba(as_image_batch(images, self.shape[:2], channels))
        names = [str(self.class_names.get(c, c)) for c in self.model.classes_.tolist()]
        frame = pd.DataFrame({"label": np.asarray(names)[proba.argmax(1)], "probability": proba.max(1)})
        for j, name in enumerate(names):
            frame[f"p_{name}"] = proba[:, j]
        return self.add_sets(frame, proba, names)


class PointPredictor(ServesConformal):
    """Rows of 2-D points (x1, x2) -> label, its probability and one ``p_<class>`` column per class (numpy-dnn on
    a point set); with a conformal calibrator also the prediction set and the drift warning."""

    def __init__(self, model, class_names: dict | None = None, features: tuple[str, ...] = ("x1", "x2")):
        self.model, self.class_names, self.features = model, dict(class_names or {}), tuple(features)

    def predict_frame(self, inputs) -> pd.DataFrame:
        proba = self.model.predict_proba(as_float_matrix(inputs, list(self.features)))
        names = [str(self.class_names.get(c, c)) for c in self.model.classes_.tolist()]
        frame = pd.DataFrame({"label": np.asarray(names)[proba.argmax(1)], "probability": proba.max(1)})
        for j, name in enumerate(names):
            frame[f"p_{name}"] = proba[:, j]
        return self.add_sets(frame, proba, names)
