"""Settings of components/projects/facial_keypoints.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from components.capabilities import Capability
from components.conformal.settings import ConformalSettings
from components.settings import ProjectSettings, Section, SplitSettings, TrainSettings

KEYPOINTS = (  # the competition's order (components/data/formats/facial_keypoints.py reads them)
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)


class KeypointDataSettings(Section):
    file: str = Field("training.csv", description="Kaggle's training.csv; training.zip beside it is read as well")
    min_complete_rows: int = Field(100, ge=1, description="faces with all 15 keypoints the file must have")


class KeypointModelSettings(Section):
    widths: tuple[int, ...] = Field(
        (16, 32),
        min_length=1,
        description="channels of the conv blocks that halve the resolution (heatmaps: 96 / shrink / 2^n)",
    )
    context: tuple[int, ...] = Field((48, 48, 48), description="channels of the dilated blocks (dilation 1, 2, 4 ...)")
    dropout: tuple[float, float] = Field((0.1, 0.1), description="Dropout2d after the downsampling / dilated blocks")
    shrink: int = Field(2, ge=1, description="average-pool the 96x96 input by this factor first (CPU speed)")


class KeypointTrainSettings(TrainSettings):
    """Nouri's schedule by default: the LR falls and (for nesterov) the momentum rises linearly per epoch."""

    optimizer: Literal["nesterov", "adamw"] = Field("adamw", description="nesterov: SGD + Nesterov momentum")
    epochs: int = Field(20, ge=1)
    schedule: Literal["onecycle", "cosine", "constant", "linear"] = "linear"
    lr: float = Field(0.003, gt=0, description="learning rate of the first epoch ...")
    lr_end: float = Field(0.0001, gt=0, description="... falling linearly to this in the last")
    momentum: float = Field(0.9, ge=0, lt=1, description="nesterov: momentum of the first epoch ...")
    momentum_end: float = Field(0.99, ge=0, lt=1, description="... rising linearly to this in the last")
    grad_clip: float | None = Field(None, gt=0, description="max gradient norm; null (the default) disables clipping")
    patience: int = Field(8, ge=1, description="epochs without a better validation RMSE before stopping")
    amp: bool = Field(False, description="bf16 autocast on CUDA; off: coordinates regress in float32")
    flip: bool = Field(True, description="mirror half of each batch: image flipped, left/right keypoints swapped")


class FacialKeypointsSettings(ProjectSettings):
    data: KeypointDataSettings = KeypointDataSettings()
    model: KeypointModelSettings = KeypointModelSettings()
    train: KeypointTrainSettings = KeypointTrainSettings()
    split: SplitSettings = SplitSettings(val=0.12, test=0.15)
    conformal: ConformalSettings | None = Field(
        None, description="split-conformal interval per coordinate (methods: [absolute]), from rows that never train"
    )
    specialists: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="group name -> keypoint names; each group gets its own net (a child run)"
    )
    examples: int = Field(12, ge=1, description="test faces in the prediction grid")

    @field_validator("specialists")
    @classmethod
    def _known_keypoints(cls, groups):
        for name, keypoints in groups.items():
            unknown = [k for k in keypoints if k not in KEYPOINTS]
            if unknown or not keypoints:
                raise ValueError(f"specialist {name!r}: unknown keypoints {unknown}; known: {list(KEYPOINTS)}")
        return groups


# What FacialKeypoints's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset(
    {Capability.CONFORMAL_INTERVALS, Capability.PROMOTION_SCORING, Capability.DISTRIBUTED_TRAINING}
)
