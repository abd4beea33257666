"""Settings of components/projects/style_transfer.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.capabilities import Capability
from components.settings import ProjectSettings, Section


class StyleDataSettings(Section):
    image_size: int = Field(96, ge=16, description="content and style images are centre-cropped to squares this size")
    min_size: int = Field(32, ge=1, description="smallest accepted width/height in pixels")
    max_size: int = Field(8192, ge=1)


class FeatureSettings(Section):
    backbone: Literal["efficientnet_lite0", "vgg19"] = "efficientnet_lite0"
    weights: str | None = Field(
        "imagenet",
        description="a torchvision state-dict file (vgg19: vgg19-dcbb9e9d.pth); "
        "'imagenet' for efficientnet_lite0's installed weights; null: random (tests only)",
    )
    content_layer: str | None = Field(None, description="null: the backbone's default (vgg19: conv4_2)")
    style_layers: dict[str, float] | None = Field(None, description="layer -> weight; null: the backbone's default")


class CostSettings(Section):
    alpha: float = Field(10.0, gt=0, description="weight of the content cost")
    beta: float = Field(10.0, gt=0, description="weight of the style cost")


class OptimiseSettings(Section):
    steps: int = Field(200, ge=1)
    lr: float = Field(0.02, gt=0, description="Adam: ~0.02 on pixels in [0, 1]; L-BFGS: ~1")
    optimizer: Literal["adam", "lbfgs"] = "adam"
    noise: float = Field(0.25, ge=0, le=1, description="start: content image + uniform noise in [-noise, noise]")
    log_every: int = Field(10, ge=1, description="MLflow gets the mean costs every this many steps")


class ServeSettings(Section):
    steps: int = Field(100, ge=1, description="optimisation steps for a content image not seen in training")


class StyleTransferSettings(ProjectSettings):
    data: StyleDataSettings = StyleDataSettings()
    model: FeatureSettings = FeatureSettings()
    cost: CostSettings = CostSettings()
    optimise: OptimiseSettings = OptimiseSettings()
    serve: ServeSettings = ServeSettings()

    @model_validator(mode="after")
    def _sizes(self):
        if self.data.min_size > self.data.max_size:
            raise ValueError(f"min_size {self.data.min_size} is larger than max_size {self.data.max_size}")
        return self


# What StyleTransfer's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING})
