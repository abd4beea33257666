"""Settings of components/projects/dinosaur_names.py: numpy-rnn's settings with defaults for a short list of
dinosaur names (torch-free, like every settings module)."""

from __future__ import annotations

from pydantic import Field

from components.projects.settings.numpy_rnn import (
    CAPABILITIES,
    CellName,
    CharLMModelSettings,
    CharLMTrainSettings,
    NamesDataSettings,
    NumpyRNNSettings,
)
from components.settings import SplitSettings


class DinoDataSettings(NamesDataSettings):
    file: str = "dinos.txt"
    min_names: int = Field(20, ge=1)  # the offline sample has 36


class DinosaurNamesSettings(NumpyRNNSettings):
    data: DinoDataSettings = DinoDataSettings()
    split: SplitSettings = SplitSettings(val=0.15, test=0.25)  # of 36 names: 22 / 5 / 9
    model: CharLMModelSettings = CharLMModelSettings(cell="gru", hidden_size=64)
    train: CharLMTrainSettings = CharLMTrainSettings(epochs=60, batch_size=8, lr=0.005)
    compare_cells: tuple[CellName, ...] = Field(("rnn", "lstm"), description="other cells trained as child runs")


__all__ = ["CAPABILITIES", "DinoDataSettings", "DinosaurNamesSettings"]
