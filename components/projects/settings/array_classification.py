"""Settings of components/projects/array_classification.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.active.settings import ActiveLearningSettings
from components.capabilities import Capability
from components.conformal.settings import ConformalSettings
from components.projects.settings.image_classification import ModelSettings, check_model_input
from components.settings import ProjectSettings, Section, TrainSettings


class ArrayDataSettings(Section):
    labels: tuple[int, ...] = Field(min_length=2, description="the label set the files must hold")
    height: int = Field(ge=1, description="image height in the files")
    width: int = Field(ge=1)
    channels: int = Field(ge=1)
    image_size: int = Field(ge=8, description="images are resized to image_size x image_size for the model")
    min_per_class: int = Field(1, ge=1)
    min_class_share: float = Field(0.0, ge=0, lt=1)
    train_limit: int | None = Field(None, ge=10, description="stratified subset of the training part (CPU-size runs)")
    test_limit: int | None = Field(None, ge=10, description="stratified subset of the test part")


class NormalizeSettings(Section):
    """Per-channel mean and std of pixels scaled to [0, 1]; one value applies to every channel."""

    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)


class ArrayClassificationSettings(ProjectSettings):
    data: ArrayDataSettings
    model: ModelSettings = ModelSettings()
    augmentation: Literal["none", "light", "strong", "affine"] = "none"
    normalize: NormalizeSettings = NormalizeSettings()
    val: float = Field(0.1, gt=0, lt=1, description="share of the training part held out for early stopping")
    train: TrainSettings = TrainSettings()
    conformal: ConformalSettings | None = None  # absent: no calibration split, no conformal stage
    active_learning: ActiveLearningSettings | None = None  # absent: no active-learning stage

    @model_validator(mode="after")
    def _model_takes_the_images(self):
        check_model_input(self.model, self.data.image_size, self.data.channels)
        return self


# What ArrayClassificationProject's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset(
    {
        Capability.CONFORMAL_SETS,
        Capability.ACTIVE_LEARNING,
        Capability.MC_SAMPLING,
        Capability.PROMOTION_SCORING,
        Capability.DISTRIBUTED_TRAINING,
    }
)
