"""What the registry serves: a project's predictor object, which ``components.serving.pyfunc_model`` wraps as an MLflow
pyfunc model.

A predictor is a plain picklable object with ``predict_frame(inputs) -> pandas.DataFrame``; the pyfunc
wrapper only loads it. Where a project calibrates conformal sets, its predictor returns them too. No MLflow
here: projects import their predictors, and training must run where only torch is installed (the GPU image).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.serving.conformal import ServesConformal


class ImageClassifierPredictor(ServesConformal):
    """uint8 images (N, H, W, 3) of any size -> label, its probability, and one probability column per class.

    With a conformal calibrator attached (``with_conformal``) it also returns ``prediction_set`` (the labels whose
    set covers the truth with the calibrated confidence), ``set_size`` and the batch's drift warning
    (components/serving/conformal.py).
    """

    def __init__(self, estimator, image_size: int, conformal=None, confidence: float | None = None):
        self.estimator = estimator
        self.image_size = image_size
        self.conformal = conformal  # a components.conformal.calibration.ConformalClassifier
        self.confidence = confidence

    def _prepare(self, images) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.shape[1:3] != (self.image_size, self.image_size):
            import torch
            from torchvision.transforms.v2 import functional as F

            t = torch.as_tensor(images).permute(0, 3, 1, 2)
            images = F.resize(t, [self.image_size, self.image_size], antialias=True).permute(0, 2, 3, 1).numpy()
        return images.astype(np.uint8)

    def predict_frame(self, images) -> pd.DataFrame:
        proba = self.estimator.predict_proba(self._prepare(images))
        classes = self.estimator.classes_
        frame = pd.DataFrame({"label": classes[proba.argmax(1)], "probability": proba.max(1)})
        for j, c in enumerate(classes):
            frame[f"p_{c}"] = proba[:, j]
        return self.add_sets(frame, proba, classes)
