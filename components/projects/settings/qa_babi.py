"""Settings of components/projects/qa_babi.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field, model_validator

from components.capabilities import Capability
from components.settings import ProjectSettings, Section, TrainSettings

# the bAbI tasks the offline sample has (components/data/formats/babi.py writes them)
TASKS = ("qa1_single-supporting-fact", "qa2_two-supporting-facts")


class BabiDataSettings(Section):
    tasks: tuple[str, ...] = Field(
        TASKS[:1], min_length=1, description="task file prefixes: <task>_train.txt and <task>_test.txt"
    )
    max_story_sentences: int = Field(12, ge=1, description="latest statements a question reads (older ones dropped)")
    val: float = Field(0.1, gt=0, lt=1, description="share of the train files held out for early stopping")
    min_questions: int = Field(50, ge=1, description="per file")
    sample_stories: dict[str, int] = Field(
        default_factory=lambda: {"train": 200, "test": 100},
        description="stories per task and split in the offline sample (5 questions each)",
    )


class ReaderModelSettings(Section):
    d_model: int = Field(32, ge=2)
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1)
    d_ff: int = Field(64, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by heads {self.heads}")
        return self


class QaBabiSettings(ProjectSettings):
    data: BabiDataSettings = BabiDataSettings()
    model: ReaderModelSettings = ReaderModelSettings()
    train: TrainSettings = TrainSettings(epochs=12, batch_size=32, lr=3e-3, weight_decay=0.01, patience=5)


# What QaBabi's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING, Capability.DISTRIBUTED_TRAINING})
