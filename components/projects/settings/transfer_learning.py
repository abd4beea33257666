"""Settings of components/projects/transfer_learning.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.models.catalog import BACKBONE_MIN_SIZES
from components.projects.settings.image_classification import ImageClassificationSettings
from components.settings import Section, SettingsProblem

Backbone = Literal["vgg16", "mobilenet_v2", "resnet50", "inception_v3", "efficientnet_lite0"]


class TransferModelSettings(Section):
    backbone: Backbone = "efficientnet_lite0"
    weights: str | None = Field(
        "imagenet",
        description="a weights file (torchvision state dict; relative paths from the working "
        "directory); 'imagenet': the packaged EfficientNet-Lite0 or MobileNetV2 weights, or "
        "torchvision's download when download_weights is true; null: random init (from scratch)",
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
    smallest = BACKBONE_MIN_SIZES[backbone]
    if image_size < smallest:
        raise SettingsProblem(
            f"images of {image_size} px (data.image_size) are too small for {backbone}: it needs "
            f"at least {smallest} px",
            at=at,
        )
