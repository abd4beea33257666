"""A project's ``conformal:`` section: which methods calibrate, at what confidence, and what is served.

Torch- and scikit-learn-free, so ``dlfolio check`` validates params.yaml without importing MAPIE; the
calibration itself is components/conformal/calibration.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.capabilities import Capability
from components.settings import Section

CLASSIFICATION_METHODS = ("lac", "aps", "raps", "top_k")
REGRESSION_METHODS = ("absolute", "cqr")
Method = Literal["lac", "aps", "raps", "top_k", "absolute", "cqr"]


class ConformalSettings(Section):
    """A project's ``conformal:`` section; the project calibrates only when the section is present."""

    methods: tuple[Method, ...] = Field(
        ("lac",), min_length=1, description="lac, aps, raps, top_k (classifiers); absolute, cqr (regressors)"
    )
    confidence_levels: tuple[float, ...] = Field((0.9, 0.95), min_length=1)
    calibration: float = Field(
        0.15,
        gt=0,
        lt=1,
        description="fraction of the labelled data held out to calibrate; never used for training or early stopping",
    )
    calibrate_on: Literal["held_out", "validation"] = Field(
        "held_out",
        description="held_out: `calibration` of the training rows, never trained on; validation: the validation "
        "split, where the trainer only reports on it or picks its best epoch / stops early by it (no training rows "
        "lost; picking one epoch by these rows makes coverage very slightly optimistic)",
    )
    randomized: bool = Field(
        False,
        description="APS/RAPS: randomize the last label (exact coverage, sets vary with "
        "the random draw); false gives deterministic, conservative sets",
    )
    drift_alpha: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="false-alarm rate of the served drift warning: a batch whose label-free conformity scores "
        "differ from the calibration scores at p < drift_alpha is flagged (components/conformal/drift.py)",
    )
    drift_test: Literal["ks", "mannwhitney"] = Field("ks", description="two-sample test of the drift warning")
    serve_method: Method | None = Field(None, description="method the registered model serves; default: first")
    serve_confidence: float | None = Field(None, description="confidence it serves; default: first level")

    @model_validator(mode="after")
    def _consistent(self):
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods repeat: {list(self.methods)}")
        if any(not 0 < c < 1 for c in self.confidence_levels):
            raise ValueError(f"confidence_levels must lie strictly between 0 and 1, got {list(self.confidence_levels)}")
        kinds = {m in CLASSIFICATION_METHODS for m in self.methods}
        if len(kinds) > 1:
            raise ValueError(
                f"methods mix classifier ({', '.join(CLASSIFICATION_METHODS)}) and regressor "
                f"({', '.join(REGRESSION_METHODS)}) methods: {list(self.methods)}"
            )
        if self.serve_method is not None and self.serve_method not in self.methods:
            raise ValueError(f"serve_method {self.serve_method!r} is not among methods {list(self.methods)}")
        if self.serve_confidence is not None and self.serve_confidence not in self.confidence_levels:
            raise ValueError(
                f"serve_confidence {self.serve_confidence} is not among confidence_levels "
                f"{list(self.confidence_levels)}"
            )
        return self

    @property
    def served(self) -> tuple[str, float]:
        return self.serve_method or self.methods[0], self.serve_confidence or self.confidence_levels[0]

    def requirement(self) -> tuple[Capability, str]:
        """Sets need a project that serves a classifier's sets, intervals one that serves a regressor's:
        checked against the project's declared capabilities when params.yaml loads."""
        if self.methods[0] in CLASSIFICATION_METHODS:
            return Capability.CONFORMAL_SETS, f"methods {list(self.methods)} calibrate a classifier's prediction sets"
        return Capability.CONFORMAL_INTERVALS, f"methods {list(self.methods)} calibrate a regressor's intervals"
