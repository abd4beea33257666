"""What the transfer-learning projects share: their settings and the two-phase estimator they train.

A transfer project is an image classification project whose model section names a backbone and its weights,
with a ``finetune`` section for phase 2 (see components/training/transfer.py):

    model:    {backbone: efficientnet_lite0, weights: imagenet, hidden: 0, dropout: 0.2}
    train:    {epochs: 5, lr: 0.003, ...}              # phase 1: frozen base, new head
    finetune: {layers: 3, epochs: 3, lr: 0.0003}       # phase 2: top 3 base layers too, lower LR
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.projects.base import Trained
from components.projects.image_classification import (
    ImageClassificationProject,
    ImageSplits,
)
from components.projects.settings.transfer_learning import TransferSettings
from components.training.transfer_estimator import TransferImageClassifier


def transfer_estimator(
    settings: TransferSettings, checkpoint_dir: Path | None = None, **overrides
) -> TransferImageClassifier:
    """The project's two-phase estimator; ``overrides`` replace whole parameters (e.g. ``train=`` a changed
    copy of ``settings.train``), as ``set_params`` would."""
    params = dict(
        model=settings.model,
        train=settings.train,
        finetune=settings.finetune,
        cache_features=settings.cache_features,
        augmentation=settings.augmentation,
        device=settings.device,
        seed=settings.seed,
        checkpoint_dir=checkpoint_dir,
    )
    return TransferImageClassifier(**{**params, **overrides})


class TransferProject(ImageClassificationProject):
    """An image classification project trained by the two-phase transfer schedule."""

    Settings = TransferSettings

    def estimator(self, settings: TransferSettings, checkpoint_dir: Path | None = None) -> TransferImageClassifier:
        return transfer_estimator(settings, checkpoint_dir)

    def train(self, data: ImageSplits, settings: TransferSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        trained = super().train(data, settings, on_epoch=on_epoch, checkpoint_dir=checkpoint_dir)
        est = trained.model
        trained.info.update(
            backbone=est.model.backbone,
            pretrained=est.module_.pretrained,
            kept_phase=est.fit_result_.kept,
            phase_epochs=phase_epochs(trained.history),
        )
        return trained


def phase_epochs(history: pd.DataFrame) -> str:
    """e.g. 'head=5,finetune=3': how many epochs each phase ran before it finished or stopped early."""
    return ",".join(f"{phase}={n}" for phase, n in history.groupby("phase", sort=False).size().items())
