"""Settings of components/projects/unet_segmentation.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.capabilities import Capability
from components.settings import ProjectSettings, Section, SplitSettings, TrainSettings


class SegmentationDataSettings(Section):
    classes: tuple[str, ...] | None = Field(None, description="class names by mask index; null: read classes.txt")
    image_size: int = Field(64, ge=8, description="images and masks are resized to image_size x image_size")
    min_size: int = Field(16, ge=1, description="smallest accepted width/height in pixels")
    max_size: int = Field(4096, ge=1)
    min_images: int = Field(20, ge=1)
    min_class_share: float = Field(0.001, ge=0, lt=1, description="every class at least this share of all pixels")
    max_class_share: float = Field(0.98, gt=0, le=1, description="no class more than this share of all pixels")

    @model_validator(mode="after")
    def _sizes(self):
        if self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} is larger than max_size {self.max_size}")
        if self.classes is not None and (len(self.classes) < 2 or len(set(self.classes)) != len(self.classes)):
            raise ValueError(f"classes must be at least 2 distinct names, got {list(self.classes)}")
        return self


class UNetSettings(Section):
    widths: tuple[int, ...] = Field(
        (16, 32, 64), min_length=2, description="channels per level, top to bottom; the last is the bottleneck"
    )


class UNetSegmentationSettings(ProjectSettings):
    data: SegmentationDataSettings = SegmentationDataSettings()
    model: UNetSettings = UNetSettings()
    augmentation: Literal["none", "flip"] = Field(
        "flip", description="flip: random horizontal flips of image and mask together"
    )
    split: SplitSettings = SplitSettings(val=0.15, test=0.2)
    train: TrainSettings = TrainSettings(epochs=12, batch_size=8, lr=0.003, patience=4)
    examples: int = Field(6, ge=1, description="test images in the prediction grid")


# What UNetSegmentation's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING, Capability.DISTRIBUTED_TRAINING})
