"""Settings of components/projects/yolo_cars.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.capabilities import Capability
from components.settings import ProjectSettings, Section, SplitSettings, TrainSettings


class BoxDataSettings(Section):
    classes: tuple[str, ...] = Field(("car", "truck"), min_length=1, description="class names boxes.csv may use")
    image_size: int = Field(96, ge=16, description="images are resized to image_size x image_size (boxes with them)")
    min_size: int = Field(16, ge=1, description="smallest accepted image width/height in pixels")
    max_size: int = Field(4096, ge=1)
    min_images: int = Field(20, ge=1)
    min_boxes_per_class: int = Field(5, ge=1)


class YoloModelSettings(Section):
    widths: tuple[int, ...] = Field(
        (8, 16, 32, 64, 128), min_length=2, description="conv block channels; a 2x2 max pool after each but the last"
    )
    anchors: int = Field(3, ge=1, description="anchors per cell, from k-means (1 - IoU) on training box sizes")


class YoloLossSettings(Section):
    noobj_weight: float = Field(0.5, ge=0, description="weight of the objectness loss on anchors without an object")
    box_weight: float = Field(5.0, ge=0, description="weight of the box regression loss")


class DecodeSettings(Section):
    score_threshold: float = Field(
        0.05, ge=0, lt=1, description="keep detections scoring at least this (objectness * class probability)"
    )
    nms_iou: float = Field(
        0.45, gt=0, le=1, description="per-class NMS drops a box overlapping a better one above this"
    )
    max_detections: int = Field(20, ge=1, description="per image, after NMS")


class YoloCarsSettings(ProjectSettings):
    data: BoxDataSettings = BoxDataSettings()
    model: YoloModelSettings = YoloModelSettings()
    loss: YoloLossSettings = YoloLossSettings()
    decode: DecodeSettings = DecodeSettings()
    augmentation: Literal["none", "flip"] = Field("flip", description="flip: random horizontal flips, boxes mirrored")
    split: SplitSettings = SplitSettings(val=0.15, test=0.2)
    train: TrainSettings = TrainSettings(epochs=15, batch_size=32, lr=0.004, patience=5)
    operating_threshold: float = Field(0.5, gt=0, lt=1, description="score at which precision and recall are reported")
    examples: int = Field(8, ge=1, description="test images in the predictions grid")

    @model_validator(mode="after")
    def _grid(self):
        stride = 2 ** (len(self.model.widths) - 1)
        if self.data.image_size % stride:
            raise ValueError(
                f"data.image_size {self.data.image_size} must be a multiple of the net's stride {stride} "
                f"(2 ** (len(model.widths) - 1))"
            )
        return self


# What YoloCars's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING, Capability.DISTRIBUTED_TRAINING})
