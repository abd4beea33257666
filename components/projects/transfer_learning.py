"""What the transfer-learning projects share: their settings and the two-phase estimator they train.

A transfer project is an image classification project whose model section names a backbone and its weights,
with a ``finetune`` section for phase 2 (see components/training/transfer.py):

    model:    {backbone: efficientnet_lite0, weights: imagenet, hidden: 0, dropout: 0.2}
    train:    {epochs: 5, lr: 0.003, ...}              # phase 1: frozen base, new head
    finetune: {layers: 3, epochs: 3, lr: 0.0003}       # phase 2: top 3 base layers too, lower LR
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field, model_validator

from components.models.transfer import BACKBONES
from components.projects.base import Trained
from components.projects.image_classification import (
    ImageClassificationProject,
    ImageClassificationSettings,
    ImageSplits,
)
from components.settings import Section, SettingsProblem
from components.training.transfer_estimator import TransferImageClassifier

Backbone = Literal["vgg16", "mobilenet_v2", "resnet50", "inception_v3", "efficientnet_lite0"]


class TransferModelSettings(Section):
    backbone: Backbone = "efficientnet_lite0"
    weights: str | None = Field(
        "imagenet",
        description="a weights file (torchvision state dict; relative paths from the working "
        "directory); 'imagenet': the packaged EfficientNet-Lite0 weights, or torchvision's "
        "download when download_weights is true; null: random init (from scratch)",
    )
    download_weights: bool = Field(False, description="let torchvision download weights: 'imagenet' (needs internet)")
    hidden: int = Field(0, ge=0, description="units of a hidden Dense+ReLU+Dropout layer in the head; 0: none")
    dropout: float = Field(0.2, ge=0, lt=1)


class FineTuneSettings(Section):
    layers: int = Field(0, ge=0, description="top layers of the base that learn in phase 2; 0: no phase 2")
    epochs: int = Field(3, ge=1)
    lr: float = Field(1e-5, gt=0)
    patience: int = Field(3, ge=1)


class TransferSettings(ImageClassificationSettings):
    model: TransferModelSettings = TransferModelSettings()
    finetune: FineTuneSettings = FineTuneSettings()
    cache_features: bool = Field(
        False,
        description="phase 1 trains the head on the frozen base's features of the un-augmented images, computed once",
    )

    @model_validator(mode="after")
    def _input_size(self):
        check_input_size(self.model.backbone, self.data.image_size, at=("data", "image_size"))
        return self


def check_input_size(backbone: str, image_size: int, at: tuple[str | int, ...]) -> None:
    """Refuse, when params.yaml loads, a backbone that would crash on images this small (its pooling runs out)."""
    smallest = BACKBONES[backbone].min_size
    if image_size < smallest:
        raise SettingsProblem(
            f"images of {image_size} px (data.image_size) are too small for {backbone}: it needs "
            f"at least {smallest} px",
            at=at,
        )


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
