"""Settings of components/projects/trigger_word.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field

from components.capabilities import Capability
from components.settings import ProjectSettings, Section, SplitSettings, TrainSettings


class TriggerDataSettings(Section):
    sample_rate: int = Field(16000, ge=4000, description="every WAV must have this rate")
    channels: int = Field(1, ge=1)
    min_word_seconds: float = Field(0.1, gt=0)
    max_word_seconds: float = Field(2.5, gt=0)
    max_background_seconds: float = Field(600.0, gt=0)


class ClipSettings(Section):
    seconds: float = Field(4.0, gt=0, description="length of a synthesised clip (the course: 10 s)")
    train: int = Field(600, ge=1, description="clips mixed for each split")
    val: int = Field(150, ge=1)
    test: int = Field(200, ge=1)
    max_activates: int = Field(2, ge=0, description="triggers per clip: 0 to this, uniformly")
    max_negatives: int = Field(2, ge=0)
    label_seconds: float = Field(0.4, gt=0, description="steps labelled 1 after a trigger ends")
    background_rms: tuple[float, float] = (0.005, 0.05)
    word_peak: tuple[float, float] = (0.3, 0.9)


class FeatureSettings(Section):
    n_fft: int = Field(400, ge=16)
    hop: int = Field(160, ge=1)
    mels: int = Field(64, ge=4)


class TriggerModelSettings(Section):
    channels: int = Field(128, ge=1)
    kernel: int = Field(15, ge=1)
    stride: int = Field(4, ge=1)
    hidden: int = Field(64, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    positive_weight: float = Field(2.0, gt=0, description="loss weight of the (rare) positive steps")


class DetectionSettings(Section):
    threshold: float = Field(0.5, gt=0, lt=1)
    merge_gap: int = Field(2, ge=0, description="runs at most this many steps apart are one detection")
    tolerance_seconds: float = Field(0.1, ge=0, description="slack around a trigger's labelled window")


class TriggerWordSettings(ProjectSettings):
    data: TriggerDataSettings = TriggerDataSettings()
    clips: ClipSettings = ClipSettings()
    features: FeatureSettings = FeatureSettings()
    split: SplitSettings = SplitSettings(val=0.15, test=0.2)
    model: TriggerModelSettings = TriggerModelSettings()
    detection: DetectionSettings = DetectionSettings()
    train: TrainSettings = TrainSettings(epochs=12, batch_size=32, lr=4e-3, patience=6, amp=False)


# What TriggerWord's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING, Capability.DISTRIBUTED_TRAINING})
