"""Settings of components/projects/transformer.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field, model_validator

from components.capabilities import Capability
from components.data.vocab import TokenLevel
from components.settings import ProjectSettings, Section, SplitSettings, TrainSettings


class ParallelTextSettings(Section):
    file: str = "pairs.tsv"
    source_tokens: TokenLevel = Field("char", description="char: digits one by one; word: words and punctuation")
    target_tokens: TokenLevel = "word"
    lowercase: bool = True
    max_source_tokens: int = Field(32, ge=1)
    max_target_tokens: int = Field(32, ge=1)
    min_pairs: int = Field(100, ge=1)


class TransformerModelSettings(Section):
    d_model: int = Field(64, ge=2)
    heads: int = Field(4, ge=1)
    encoder_layers: int = Field(2, ge=1)
    decoder_layers: int = Field(2, ge=1)
    d_ff: int = Field(128, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1, description="0 suits the noiseless sample; ~0.1 for real text")

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by heads {self.heads}")
        return self


class Seq2SeqTrainSettings(TrainSettings):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0, description="peak LR of the schedule")
    weight_decay: float = Field(0.01, ge=0)
    patience: int = Field(8, ge=1, description="epochs without a lower validation loss before stopping")
    label_smoothing: float = Field(0.0, ge=0, lt=1)


class DecodingSettings(Section):
    max_len: int = Field(20, ge=1, description="most target tokens a greedy translation may have")
    attention_example: int = Field(0, ge=0, description="test pair whose cross-attention is drawn")


class TransformerSettings(ProjectSettings):
    data: ParallelTextSettings = ParallelTextSettings()
    split: SplitSettings = SplitSettings(val=0.1, test=0.1)
    model: TransformerModelSettings = TransformerModelSettings()
    train: Seq2SeqTrainSettings = Seq2SeqTrainSettings()
    decoding: DecodingSettings = DecodingSettings()


# What TransformerProject's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING, Capability.DISTRIBUTED_TRAINING})
