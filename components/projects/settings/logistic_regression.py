"""Settings of components/projects/logistic_regression.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field

from components.active.settings import ActiveLearningSettings
from components.capabilities import Capability
from components.conformal.settings import ConformalSettings
from components.settings import ProjectSettings, Section


class BinaryImageDataSettings(Section):
    image_size: int = Field(64, ge=1, description="images are image_size x image_size x 3")
    min_per_class: int = Field(10, ge=1)
    min_class_share: float = Field(0.1, ge=0, lt=0.5)


class LogisticTrainSettings(Section):
    lr: float = Field(0.005, gt=0)
    iterations: int = Field(2000, ge=1, description="batch gradient-descent steps")
    record_every: int = Field(100, ge=1, description="iterations between points of the cost curve")


class LogisticRegressionSettings(ProjectSettings):
    data: BinaryImageDataSettings = BinaryImageDataSettings()
    train: LogisticTrainSettings = LogisticTrainSettings()
    conformal: ConformalSettings | None = None  # absent: no calibration split, no conformal stage
    active_learning: ActiveLearningSettings | None = None  # absent: no active-learning stage


# What LogisticRegression's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.CONFORMAL_SETS, Capability.ACTIVE_LEARNING, Capability.PROMOTION_SCORING})
