"""Settings of components/projects/nmt_dates.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

import string

from pydantic import Field

from components.capabilities import Capability
from components.settings import ProjectSettings, Section, SplitSettings, TrainSettings


class DatePairsDataSettings(Section):
    file: str = "dates.csv"
    alphabet: str = Field(
        string.ascii_lowercase + string.digits + " ,./-",
        min_length=1,
        description="every character a lowercased human date may contain",
    )
    max_input_length: int = Field(30, ge=1, description="Tx: inputs are padded to this many characters")
    min_pairs: int = Field(100, ge=1)


class DateModelSettings(Section):
    embedding: int = Field(16, ge=1)
    encoder: int = Field(32, ge=1, description="LSTM units per direction")
    decoder: int = Field(64, ge=1, description="post-attention LSTM units")
    attention: int = Field(16, ge=1, description="hidden units of the attention scorer")


class DateTrainSettings(TrainSettings):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.01, gt=0)


class NmtDatesSettings(ProjectSettings):
    data: DatePairsDataSettings = DatePairsDataSettings()
    split: SplitSettings = SplitSettings(val=0.1, test=0.1)
    model: DateModelSettings = DateModelSettings()
    train: DateTrainSettings = DateTrainSettings()
    attention_examples: int = Field(4, ge=1, description="test inputs shown in the attention-map figure")


# What NmtDates's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING, Capability.DISTRIBUTED_TRAINING})
