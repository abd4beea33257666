"""What a project is: a name, a settings schema, and one method per pipeline stage.

The flow in ``flows/pipeline.py`` calls these methods in the order of the pipeline diagram; a project never
sees Prefect or MLflow. Adding a project means writing a subclass (most reuse ``ImageClassificationProject``)
and a section in params.yaml, not copying a flow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from components.capabilities import Capability
from components.evaluation.report import Report
from components.settings import ProjectSettings
from components.validation.expectations import ValidationReport


@dataclass
class Trained:
    model: Any
    history: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per epoch, columns are metrics
    info: dict[str, Any] = field(default_factory=dict)  # e.g. best_epoch, parameter count


class Project(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    Settings: ClassVar[type[ProjectSettings]]
    primary_metric: ClassVar[str] = "accuracy"
    higher_is_better: ClassVar[bool] = True
    # What the code can do beyond the required stages. params.yaml is checked against it when it loads (a
    # ``conformal:`` section needs CONFORMAL_SETS or CONFORMAL_INTERVALS, ``active_learning:`` ACTIVE_LEARNING,
    # a ``schedule`` PROMOTION_SCORING) and the pipeline runs the optional stages by it; tests/test_capabilities.py
    # checks that every catalog project's declaration matches its code. A project's Settings and capabilities are
    # the ones in components/projects/settings/ that its CATALOG entry names (get_project refuses a mismatch).
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    @abstractmethod
    def make_sample(self, out_dir: Path) -> dict[str, Any]:
        """Write the offline sample dataset, deterministically, in the project's real format."""

    @abstractmethod
    def validate(self, settings: ProjectSettings) -> ValidationReport:
        """Check the dataset; raise ``DataValidationError`` naming what failed."""

    @abstractmethod
    def prepare(self, settings: ProjectSettings) -> Any:
        """Load, preprocess and split the dataset."""

    @abstractmethod
    def train(self, data: Any, settings: ProjectSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        """Fit the model; ``on_epoch(dict)`` receives each epoch's metrics."""

    @abstractmethod
    def evaluate(self, trained: Trained, data: Any, settings: ProjectSettings) -> Report:
        """Metrics on held-out data, with figures and plot tables."""

    @abstractmethod
    def predictor(self, trained: Trained, data: Any, settings: ProjectSettings) -> tuple[Any, Any]:
        """The object the registered pyfunc model serves, and an input example for its signature."""

    def score(self, model: Any, data: Any, settings: ProjectSettings) -> dict[str, float]:
        """Test metrics (keys as in ``evaluate``) of a served model: anything with ``predict(inputs) -> DataFrame``,
        such as a loaded registered pyfunc model. The promotion gate scores champion and challenger with this on
        the same, current test split of ``data`` (from ``prepare``)."""
        raise NotImplementedError(f"project {self.name!r} cannot score a registered model yet (Project.score)")
