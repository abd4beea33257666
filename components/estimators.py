"""scikit-learn estimators around our torch models, so modAL, MAPIE and sklearn metrics see a plain classifier.

``__init__`` only stores parameters; ``fit`` builds and trains the network and returns ``self``; learned
attributes end in ``_``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch.utils.data import DataLoader

from . import augment
from .models import build_model
from .training import FitResult, TrainConfig, fit, predict_logits, resolve_device


class TorchImageClassifier(ClassifierMixin, BaseEstimator):
    """Image classifier on uint8 arrays of shape (N, H, W, C).

    ``fit(X, y, X_val=None, y_val=None)`` holds out a stratified slice of X for early stopping when no
    validation set is given.
    """

    def __init__(
        self,
        model: str = "mask_cnn",
        model_kwargs: dict | None = None,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        grad_clip: float | None = 1.0,
        schedule: str = "onecycle",
        patience: int = 5,
        amp: bool = True,
        augmentation: str = "light",
        val_fraction: float = 0.15,
        device: str = "auto",
        seed: int = 0,
        progress: bool = True,
        checkpoint_dir: str | Path | None = None,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ):
        self.model = model
        self.model_kwargs = model_kwargs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.schedule = schedule
        self.patience = patience
        self.amp = amp
        self.augmentation = augmentation
        self.val_fraction = val_fraction
        self.device = device
        self.seed = seed
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir
        self.mean = mean
        self.std = std

    def _train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                           grad_clip=self.grad_clip, schedule=self.schedule, patience=self.patience, amp=self.amp)

    def _normalization(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean/std (ImageNet's unless given); one value serves any channel count."""
        mean = tuple(self.mean) if self.mean is not None else augment.IMAGENET_MEAN
        std = tuple(self.std) if self.std is not None else augment.IMAGENET_STD
        for name, values in (("mean", mean), ("std", std)):
            # torchvision would broadcast 3 values over 1 channel and silently make a 3-channel image.
            if len(values) not in (1, channels):
                raise ValueError(f"normalisation {name} has {len(values)} values but the images have {channels} "
                                 f"channel(s): give 1 or {channels} values")
        return mean, std

    def fit(self, X, y, X_val=None, y_val=None, on_epoch=None):
        X, y = np.asarray(X), np.asarray(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if X_val is None:
            X, y_idx, X_val, y_val_idx = _stratified_holdout(X, y_idx, self.val_fraction, self.seed)
        else:
            y_val_idx = np.searchsorted(self.classes_, np.asarray(y_val))
        torch.manual_seed(self.seed)
        self.module_ = build_model(self.model, num_classes=len(self.classes_), in_channels=X.shape[-1],
                                   **(self.model_kwargs or {}))
        self.device_ = resolve_device(self.device)
        mean, std = self._normalization(X.shape[-1])
        train_set = augment.ArrayDataset(X, y_idx, augment.train_transform(self.augmentation, mean, std))
        val_set = augment.ArrayDataset(X_val, y_val_idx, augment.normalize(mean, std))
        self.fit_result_: FitResult = fit(
            self.module_, train_set, val_set, self._train_config(), self.device_, seed=self.seed,
            on_epoch=on_epoch, progress=self.progress,
            checkpoint_dir=Path(self.checkpoint_dir) if self.checkpoint_dir else None,
        )
        self.module_.to("cpu")
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "module_")
        X = np.asarray(X)
        loader = DataLoader(augment.ArrayDataset(X, transform=augment.normalize(*self._normalization(X.shape[-1]))),
                            batch_size=256)
        device = resolve_device(self.device)
        logits = predict_logits(self.module_, loader, device, amp=self.amp)
        self.module_.to("cpu")
        proba = torch.softmax(logits.double(), dim=1).numpy()
        return proba / proba.sum(axis=1, keepdims=True)  # exact sums: MAPIE and sklearn check them

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _stratified_holdout(X, y, fraction, seed):
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        take = max(1, int(round(fraction * len(idx))))
        val[rng.choice(idx, size=take, replace=False)] = True
    return X[~val], y[~val], X[val], y[val]
