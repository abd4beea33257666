"""Settings of components/projects/numpy_cnn.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.active.settings import ActiveLearningSettings
from components.capabilities import Capability
from components.conformal.settings import ConformalSettings
from components.projects.settings.image_classification import ImageDataSettings
from components.settings import ProjectSettings, Section, SplitSettings


class ConvBlockSettings(Section):
    filters: int = Field(ge=1)
    kernel: int = Field(3, ge=1)
    stride: int = Field(1, ge=1)
    padding: int = Field(1, ge=0)
    pool: Literal["max", "avg", "none"] = "max"
    pool_size: int = Field(2, ge=1)


class NumpyCNNModelSettings(Section):
    blocks: tuple[ConvBlockSettings, ...] = Field(min_length=1, description="conv -> ReLU -> pool, in order")
    hidden: tuple[int, ...] = Field((64,), description="dense ReLU layers before the softmax layer")


class ScratchTrainSettings(Section):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["gd", "sgd", "momentum", "rmsprop", "adam"] = "adam"
    lr: float = Field(2e-3, gt=0)
    l2: float = Field(0.0, ge=0, description="L2 penalty l2 / (2N) * sum of squared weights")
    decay: Literal["none", "inverse_time", "exponential", "step"] = "none"
    decay_rate: float = Field(0.0, ge=0)


class NumpyCNNSettings(ProjectSettings):
    data: ImageDataSettings
    split: SplitSettings = SplitSettings()
    model: NumpyCNNModelSettings
    train: ScratchTrainSettings = ScratchTrainSettings()
    conformal: ConformalSettings | None = None  # absent: no calibration split, no conformal stage
    active_learning: ActiveLearningSettings | None = None  # absent: no active-learning stage
    compare_pooling: bool = Field(True, description="also train all-max and all-avg pooling variants (child runs)")


# What NumpyCNN's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.CONFORMAL_SETS, Capability.ACTIVE_LEARNING, Capability.PROMOTION_SCORING})
