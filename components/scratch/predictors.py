"""What the registry serves for the NumPy projects: picklable objects with ``predict_frame(inputs)``.

They wrap the fitted scratch models and turn raw inputs (Celsius values, uint8 images of any size) into a
DataFrame; ``components.serving.pyfunc_model.PredictorModel`` loads them inside the MLflow pyfunc model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class RegressionPredictor:
    """Celsius values, shape (n,) or (n, 1) -> a ``fahrenheit`` column (named by ``target``); with a conformal
    calibrator attached (``with_conformal``) also ``lower`` and ``upper``, the calibrated interval."""

    def __init__(self, model, feature: str = "celsius", target: str = "fahrenheit", conformal=None,
                 confidence: float | None = None):
        self.model, self.feature, self.target = model, feature, target
        self.conformal, self.confidence = conformal, confidence  # a components.conformal.calibration.ConformalRegressor

    def with_conformal(self, calibrator, confidence: float) -> RegressionPredictor:
        calibrator.at(confidence)  # refuse an uncalibrated level now, not at serving time
        return RegressionPredictor(self.model, self.feature, self.target, calibrator, confidence)

    @property
    def pip_requirements(self) -> list[str]:
        return ["mapie"] if self.conformal is not None else []

    def predict_frame(self, inputs) -> pd.DataFrame:
        x = np.asarray(inputs, dtype=np.float64).reshape(-1)
        frame = pd.DataFrame({self.feature: x, self.target: self.model.predict(x)})
        if self.conformal is not None:
            _, intervals = self.conformal.predict_intervals(x[:, None])
            level = self.conformal.at(self.confidence)
            frame["lower"], frame["upper"] = intervals[:, 0, level], intervals[:, 1, level]
        return frame


def fit_images(images, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, C), any size -> uint8 (N, *shape); shape is (h, w) or (h, w, 3)."""
    from PIL import Image

    images = np.asarray(images)
    if images.ndim == len(shape):
        images = images[None]
    if images.shape[1:] == tuple(shape):
        return images.astype(np.uint8)
    mode = "RGB" if len(shape) == 3 else "L"
    out = np.empty((len(images), *shape), dtype=np.uint8)
    for i, image in enumerate(images.astype(np.uint8)):
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        out[i] = np.asarray(Image.fromarray(image).convert(mode).resize((shape[1], shape[0]), Image.BILINEAR))
    return out


class ImagePredictor:
    """uint8 images -> label, its probability and one ``p_<class>`` column per class."""

    def __init__(self, model, shape: tuple[int, ...], class_names: dict | None = None):
        self.model, self.shape, self.class_names = model, tuple(shape), dict(class_names or {})

    def predict_frame(self, images) -> pd.DataFrame:
        proba = self.model.predict_proba(fit_images(images, self.shape))
        names = [str(self.class_names.get(c, c)) for c in self.model.classes_.tolist()]
        frame = pd.DataFrame({"label": np.asarray(names)[proba.argmax(1)], "probability": proba.max(1)})
        for j, name in enumerate(names):
            frame[f"p_{name}"] = proba[:, j]
        return frame
