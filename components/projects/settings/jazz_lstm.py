"""Settings of components/projects/jazz_lstm.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field

from components.capabilities import Capability
from components.settings import ProjectSettings, Section, SplitSettings, TrainSettings


class MelodyDataSettings(Section):
    grid: float = Field(0.25, gt=0, description="quarters per time step (0.25 = a sixteenth)")
    max_steps: int = Field(16, ge=1, description="longest note or rest in steps; longer ones are cut")
    transpose: bool = Field(True, description="move every melody to C major / A minor before tokenizing")
    min_count: int = Field(2, ge=1, description="tokens seen fewer times in the training pieces read as <unk>")
    min_notes: int = Field(8, ge=1, description="a file's melody needs at least this many notes")
    min_pitch: int = Field(0, ge=0, le=127)
    max_pitch: int = Field(127, ge=0, le=127)
    min_files: int = Field(3, ge=3, description="train, validation and test need a piece each")


class NoteLSTMSettings(Section):
    embed_dim: int = Field(64, ge=1)
    hidden_size: int = Field(128, ge=1)
    layers: int = Field(1, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)


class NoteTrainSettings(TrainSettings):
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-2, gt=0)
    patience: int = Field(8, ge=1, description="epochs without validation improvement before stopping")
    amp: bool = Field(False, description="bf16 autocast on CUDA; off: the LSTM has trained in float32")
    window: int = Field(128, ge=2, description="tokens per training window (truncated backpropagation)")


class GenerationSettings(Section):
    length: int = Field(64, ge=1, description="tokens per generated solo")
    temperature: float = Field(
        1.0, ge=0, description="for the metrics, the MIDI artifact and the served model; 0 = greedy"
    )
    count: int = Field(30, ge=1, description="solos sampled for the metrics")
    bpm: float = Field(100.0, gt=0, description="tempo of the written MIDI")


class JazzLSTMSettings(ProjectSettings):
    data: MelodyDataSettings = MelodyDataSettings()
    split: SplitSettings = SplitSettings(val=0.1, test=0.1)
    model: NoteLSTMSettings = NoteLSTMSettings()
    train: NoteTrainSettings = NoteTrainSettings()
    generation: GenerationSettings = GenerationSettings()


# What JazzLSTM's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING, Capability.DISTRIBUTED_TRAINING})
