"""Settings of components/projects/emojify.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.active.settings import ActiveLearningSettings
from components.capabilities import Capability
from components.conformal.settings import ConformalSettings
from components.settings import ProjectSettings, Section, SplitSettings, TrainSettings

Arch = Literal["average", "lstm"]
EMOJI = {
    "heart": "\u2764\ufe0f",
    "baseball": "\u26be",
    "smile": "\U0001f604",
    "disappointed": "\U0001f61e",
    "fork_and_knife": "\U0001f374",
}


class EmojiDataSettings(Section):
    file: str = "emoji.csv"
    glove_file: str = "glove.6B.50d.txt"
    dimension: int = Field(50, ge=1)
    classes: tuple[str, ...] = Field(tuple(EMOJI), min_length=2, description="emoji names; label i is classes[i]")
    max_words: int = Field(20, ge=1, description="words kept per sentence (the rest are cut)")
    min_rows: int = Field(50, ge=1)
    min_per_class: int = Field(5, ge=1)
    sample_per_class: int = Field(240, ge=1, description="template sentences per emoji in the offline sample")
    sample_words: int = Field(10000, ge=1, description="most frequent GloVe words in the offline sample")


class EmojiModelSettings(Section):
    arch: Arch = Field("lstm", description="the served model; every arch in `arms` trains as a child run")
    hidden: int = Field(128, ge=1)
    layers: int = Field(2, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)


class ArmSettings(Section):
    epochs: int | None = Field(None, ge=1, description="null: train.epochs")
    lr: float | None = Field(None, gt=0, description="null: train.lr")


class EmojifySettings(ProjectSettings):
    data: EmojiDataSettings = EmojiDataSettings()
    split: SplitSettings = SplitSettings(val=0.15, test=0.2)
    model: EmojiModelSettings = EmojiModelSettings()
    train: TrainSettings = TrainSettings(epochs=15, lr=3e-3, patience=5, amp=False)
    conformal: ConformalSettings | None = None  # absent: no calibration split, no conformal stage
    active_learning: ActiveLearningSettings | None = None  # absent: no active-learning stage
    arms: dict[Arch, ArmSettings] = Field(
        default_factory=lambda: {"average": ArmSettings(epochs=40, lr=0.05), "lstm": ArmSettings()}
    )


# What Emojify's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset(
    {
        Capability.CONFORMAL_SETS,
        Capability.ACTIVE_LEARNING,
        Capability.PROMOTION_SCORING,
        Capability.DISTRIBUTED_TRAINING,
    }
)
