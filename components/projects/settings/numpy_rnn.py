"""Settings of components/projects/numpy_rnn.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

import string
from typing import Literal

from pydantic import Field

from components.capabilities import Capability
from components.settings import ProjectSettings, Section, SplitSettings

CellName = Literal["rnn", "gru", "lstm"]


class NamesDataSettings(Section):
    file: str = "names.txt"
    alphabet: str = Field(string.ascii_lowercase, min_length=1, description="every character a name may contain")
    lowercase: bool = True
    min_length: int = Field(1, ge=1)
    max_length: int = Field(30, ge=1)
    min_names: int = Field(100, ge=1)


class CharLMModelSettings(Section):
    cell: CellName = "lstm"
    hidden_size: int = Field(64, ge=1)


class CharLMTrainSettings(Section):
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["gd", "sgd", "momentum", "rmsprop", "adam"] = "adam"
    lr: float = Field(1e-2, gt=0)
    grad_clip: float | None = Field(5.0, gt=0, description="max global gradient norm; null disables clipping")
    decay: Literal["none", "inverse_time", "exponential", "step"] = "none"
    decay_rate: float = Field(0.0, ge=0)


class SamplingSettings(Section):
    count: int = Field(300, ge=1, description="names sampled for the novelty figures")
    temperature: float = Field(1.0, ge=0, description="for the metrics and the served model; 0 = greedy")
    table_temperatures: tuple[float, ...] = Field(
        (0.5, 1.0, 1.5), description="temperatures shown in the samples table"
    )
    table_count: int = Field(20, ge=0, description="samples per temperature in the table")
    max_len: int = Field(30, ge=1)


class NumpyRNNSettings(ProjectSettings):
    data: NamesDataSettings = NamesDataSettings()
    split: SplitSettings = SplitSettings(val=0.1, test=0.1)
    model: CharLMModelSettings = CharLMModelSettings()
    train: CharLMTrainSettings = CharLMTrainSettings()
    sampling: SamplingSettings = SamplingSettings()
    compare_cells: tuple[CellName, ...] = Field(("rnn", "gru"), description="other cells trained as child runs")


# What NumpyRNN's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING})
