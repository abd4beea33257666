"""Settings of components/projects/autodiff_mlp.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field

from components.active.settings import ActiveLearningSettings
from components.capabilities import Capability
from components.conformal.settings import ConformalSettings
from components.settings import ProjectSettings, Section, SplitSettings


class DigitFolderSettings(Section):
    classes: tuple[str, ...] = Field(tuple(str(d) for d in range(10)), min_length=2)
    image_size: int = Field(8, ge=4)
    min_size: int = Field(8, ge=1)
    max_size: int = Field(1024, ge=1)
    min_per_class: int = Field(20, ge=1)
    min_class_share: float = Field(0.05, ge=0, lt=1)


class MLPSettings(Section):
    hidden: tuple[int, ...] = (64,)
    activation: str = "relu"
    init: str = "he"


class AutodiffTrainSettings(Section):
    optimizer: str = "adam"
    lr: float = Field(3e-3, gt=0)
    epochs: int = Field(15, ge=1)
    batch_size: int = Field(32, ge=1)


class AutodiffMLPSettings(ProjectSettings):
    data: DigitFolderSettings = DigitFolderSettings()
    model: MLPSettings = MLPSettings()
    split: SplitSettings = SplitSettings()
    train: AutodiffTrainSettings = AutodiffTrainSettings()
    conformal: ConformalSettings | None = None  # absent: no calibration split, no conformal stage
    active_learning: ActiveLearningSettings | None = None  # absent: no active-learning stage


# What AutodiffMLP's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.CONFORMAL_SETS, Capability.ACTIVE_LEARNING, Capability.PROMOTION_SCORING})
