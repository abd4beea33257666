"""``TransferImageClassifier``: the scikit-learn image classifier, trained by the two-phase transfer schedule.

It is a ``TorchImageClassifier`` (same predict_proba, same pickled predictor for serving) whose network is a
``TransferNet`` and whose ``fit`` runs ``fit_transfer``: frozen base + new head, then the top layers at a
lower learning rate. Inputs are normalised the way the backbone's weights expect unless mean/std are given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.training import augment
from components.training.estimators import TorchImageClassifier, _stratified_holdout
from components.models.transfer import TransferNet, normalization
from components.training.loop import resolve_device
from components.training.transfer import TransferConfig, TransferFitResult, fit_transfer


class TransferImageClassifier(TorchImageClassifier):
    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        weights: str | None = "imagenet",
        download_weights: bool = False,
        hidden: int = 0,
        dropout: float = 0.2,
        epochs: int = 5,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        grad_clip: float | None = 1.0,
        schedule: str = "onecycle",
        patience: int = 3,
        finetune_layers: int = 0,
        finetune_epochs: int = 3,
        finetune_lr: float = 1e-4,
        finetune_patience: int = 3,
        cache_features: bool = False,
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
        self.backbone = backbone
        self.weights = weights
        self.download_weights = download_weights
        self.hidden = hidden
        self.dropout = dropout
        self.finetune_layers = finetune_layers
        self.finetune_epochs = finetune_epochs
        self.finetune_lr = finetune_lr
        self.finetune_patience = finetune_patience
        self.cache_features = cache_features
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

    def _normalization(self, channels: int):
        if self.mean is None and self.std is None:
            return normalization(self.backbone)
        return super()._normalization(channels)

    def _transfer_config(self) -> TransferConfig:
        head = self._train_config()
        finetune = None
        if self.finetune_layers > 0 and self.finetune_epochs > 0:
            finetune = head.model_copy(update={"epochs": self.finetune_epochs, "lr": self.finetune_lr,
                                               "patience": self.finetune_patience})
        return TransferConfig(head, finetune, self.finetune_layers, self.cache_features)

    def fit(self, X, y, X_val=None, y_val=None, on_epoch=None):
        X, y = np.asarray(X), np.asarray(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if X_val is None:
            X, y_idx, X_val, y_val_idx = _stratified_holdout(X, y_idx, self.val_fraction, self.seed)
        else:
            y_val_idx = np.searchsorted(self.classes_, np.asarray(y_val))
        torch.manual_seed(self.seed)  # the new head's initial weights
        self.module_ = TransferNet(self.backbone, num_classes=len(self.classes_), in_channels=X.shape[-1],
                                   weights=self.weights, download=self.download_weights, hidden=self.hidden,
                                   dropout=self.dropout)
        self.device_ = resolve_device(self.device)
        mean, std = self._normalization(X.shape[-1])
        self.fit_result_: TransferFitResult = fit_transfer(
            self.module_,
            augment.ArrayDataset(X, y_idx, augment.train_transform(self.augmentation, mean, std)),
            augment.ArrayDataset(X_val, y_val_idx, augment.normalize(mean, std)),
            self._transfer_config(), self.device_,
            plain_train_set=augment.ArrayDataset(X, y_idx, augment.normalize(mean, std)),
            seed=self.seed, on_epoch=on_epoch, progress=self.progress,
            checkpoint_dir=Path(self.checkpoint_dir) if self.checkpoint_dir else None,
        )
        self.module_.to("cpu").eval()
        return self
