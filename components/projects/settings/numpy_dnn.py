"""Settings of components/projects/numpy_dnn.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.active.settings import ActiveLearningSettings
from components.capabilities import Capability
from components.conformal.settings import ConformalSettings
from components.settings import ProjectSettings, Section

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
Activation = Literal["relu", "tanh", "sigmoid"]
Init = Literal["zeros", "random", "he", "xavier"]
Optimizer = Literal["gd", "sgd", "momentum", "rmsprop", "adam"]
Decay = Literal["none", "inverse_time", "exponential", "step"]


class IdxDataSettings(Section):
    format: Literal["idx", "points", "catvnoncat"] = Field(
        "idx",
        description="idx: MNIST-layout image files; points: train.csv/test.csv of x1,x2,label (2-D point-set studies); "
        "catvnoncat: train_catvnoncat.h5/test_catvnoncat.h5 (RGB, logistic-regression's layout)",
    )
    class_names: tuple[str, ...] = Field(FASHION_CLASSES, min_length=2, description="name of label 0, 1, ...")
    image_size: int = Field(28, ge=1)
    val_size: int = Field(5000, ge=1, description="taken from the training files for per-epoch validation")
    min_per_class: int = Field(50, ge=1)
    min_class_share: float = Field(0.05, ge=0, lt=1)


class DenseModelSettings(Section):
    hidden: tuple[int, ...] = (256, 128)
    activation: Activation = "relu"
    init: Init = "he"
    random_scale: float = Field(0.01, gt=0, description="std of the 'random' initialisation")


class DenseTrainSettings(Section):
    optimizer: Optimizer = "adam"
    lr: float = Field(1e-3, gt=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    l2: float = Field(0.0, ge=0)
    l1: float = Field(0.0, ge=0, description="L1 penalty l1 / N * sum |W| on the weights (not biases)")
    keep_prob: float = Field(1.0, gt=0, le=1, description="dropout keep probability of hidden units; 1 disables")
    decay: Decay = "inverse_time"
    decay_rate: float = Field(0.1, ge=0)
    decay_interval: int = Field(1, ge=1, description="epochs per step of the 'step' decay")


class ComparisonSettings(Section):
    enabled: bool = True
    train_size: int = Field(6000, ge=10)
    val_size: int = Field(2000, ge=10)
    epochs: int = Field(8, ge=1)
    hidden: tuple[int, ...] = (128, 64)
    batch_size: int = Field(64, ge=1)
    sgd_lr: float = Field(0.05, gt=0, description="minibatch SGD rate of the init and decay groups")
    optimizer_lrs: dict[Optimizer, float] = Field(
        default_factory=lambda: {"gd": 0.5, "sgd": 0.05, "momentum": 0.05, "rmsprop": 0.001, "adam": 0.001}
    )
    l2: float = Field(1.0, gt=0)
    keep_prob: float = Field(0.7, gt=0, lt=1)
    regularization_train_size: int = Field(1000, ge=10, description="small on purpose: the unregularised net overfits")
    regularization_epochs: int = Field(30, ge=1)
    decays: dict[Decay, float] = Field(
        default_factory=lambda: {"none": 0.0, "inverse_time": 0.5, "exponential": 0.2, "step": 1.0}
    )
    decay_interval: int = Field(2, ge=1)


class GradCheckSettings(Section):
    samples: int = Field(16, ge=1)
    coordinates: int = Field(100, ge=1, description="sampled coordinates per parameter array")


class NumpyDNNSettings(ProjectSettings):
    data: IdxDataSettings = IdxDataSettings()
    model: DenseModelSettings = DenseModelSettings()
    train: DenseTrainSettings = DenseTrainSettings()
    comparisons: ComparisonSettings = ComparisonSettings()
    gradcheck: GradCheckSettings = GradCheckSettings()
    conformal: ConformalSettings | None = None  # absent: no calibration split, no conformal stage
    active_learning: ActiveLearningSettings | None = None  # absent: no active-learning stage


# What NumpyDNN's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.CONFORMAL_SETS, Capability.ACTIVE_LEARNING, Capability.PROMOTION_SCORING})
