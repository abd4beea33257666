"""``TransferImageClassifier``: the scikit-learn image classifier, trained by the two-phase transfer schedule.

It is a ``TorchImageClassifier`` (same predict_proba, same pickled predictor for serving) whose network is a
``TransferNet`` and whose ``fit`` runs ``fit_transfer``: frozen base + new head, then the top layers at a
lower learning rate. Inputs are normalised the way the backbone's weights expect unless mean/std are given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from components.models.transfer import TransferNet, normalization
from components.training import augment, device_data
from components.training.estimators import TorchImageClassifier, _stratified_holdout, initialised_on
from components.training.loop import resolve_device
from components.training.transfer import TransferConfig, TransferFitResult, fit_transfer

if TYPE_CHECKING:  # a type only: training/ imports without pydantic
    from components.settings import TrainSettings


class TransferModelSection(Protocol):
    """components/projects/transfer_learning.py's TransferModelSettings, as the estimator reads it."""

    backbone: str
    weights: str | None
    download_weights: bool
    hidden: int
    dropout: float


class FineTuneSection(Protocol):
    """Phase 2 (components/projects/transfer_learning.py's FineTuneSettings); ``layers=0``: no phase 2."""

    layers: int
    epochs: int
    lr: float
    patience: int


class TransferImageClassifier(TorchImageClassifier):
    """``model`` is the transfer project's model section (backbone, weights, download_weights, hidden, dropout),
    ``train`` phase 1's and ``finetune`` phase 2's (layers, epochs, lr, patience): the validated sections."""

    def __init__(
        self,
        model: TransferModelSection,
        train: TrainSettings,
        finetune: FineTuneSection,
        cache_features: bool = False,
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
        self.train = train
        self.finetune = finetune
        self.cache_features = cache_features
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
            return normalization(self.model.backbone)
        return super()._normalization(channels)

    def _transfer_config(self) -> TransferConfig:
        head = self.train
        f = self.finetune
        finetune = None
        if f.layers > 0 and f.epochs > 0:
            finetune = head.model_copy(update={"epochs": f.epochs, "lr": f.lr, "patience": f.patience})
        return TransferConfig(head, finetune, f.layers, self.cache_features)

    def fit(self, X, y, X_val=None, y_val=None, on_epoch=None):
        X, y = np.asarray(X), np.asarray(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if X_val is None:
            X, y_idx, X_val, y_val_idx = _stratified_holdout(X, y_idx, self.val_fraction, self.seed)
        else:
            y_val_idx = np.searchsorted(self.classes_, np.asarray(y_val))
        torch.manual_seed(self.seed)  # the new head's initial weights
        m = self.model
        self.device_ = resolve_device(self.device)
        with initialised_on(self.device_):
            self.module_ = TransferNet(
                m.backbone,
                num_classes=len(self.classes_),
                in_channels=X.shape[-1],
                weights=m.weights,
                download=m.download_weights,
                hidden=m.hidden,
                dropout=m.dropout,
            )
        mean, std = self._normalization(X.shape[-1])
        train_set = self._train_dataset(X, y_idx, mean, std)  # augmented a whole batch at a time on a GPU
        if isinstance(train_set, device_data.ImageTensorDataset):
            normalize = device_data.Normalize(mean=mean, std=std)
            val_set = device_data.ImageTensorDataset(X_val, y_val_idx, normalize=normalize)
            plain_set = device_data.ImageTensorDataset(X, y_idx, normalize=normalize)
        else:
            # The CPU keeps the per-image path for all three: a DataLoader draws one number from torch's stream per
            # epoch, so swapping only the validation set changes every later dropout mask and augmentation (a
            # from-scratch VGG16's test accuracy 0.525 -> 0.5025 on the same machine): same model, other noise.
            val_set = augment.ArrayDataset(X_val, y_val_idx, augment.normalize(mean, std))
            plain_set = augment.ArrayDataset(X, y_idx, augment.normalize(mean, std))
        self.fit_result_: TransferFitResult = fit_transfer(
            self.module_,
            train_set,
            val_set,
            self._transfer_config(),
            self.device_,
            plain_train_set=plain_set,
            seed=self.seed,
            on_epoch=on_epoch,
            progress=self.progress,
            checkpoint_dir=Path(self.checkpoint_dir) if self.checkpoint_dir else None,
            resume=True,  # a run killed mid-training continues from its checkpoints (as TorchImageClassifier's)
        )
        self.module_.to("cpu").eval()
        return self
