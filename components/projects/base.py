"""What a project is: a name, a settings schema, and one method per pipeline stage.

The flow in ``flows/pipeline.py`` calls these methods in the order of the pipeline diagram; a project never
sees Prefect or MLflow. Adding a project means writing a subclass (most reuse ``ImageClassificationProject``)
and a section in params.yaml, not copying a flow.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from components.capabilities import Capability
from components.evaluation.report import Report
from components.settings import ProjectSettings, SettingsError
from components.validation.expectations import ValidationReport

CONFORMAL = frozenset({Capability.CONFORMAL_SETS, Capability.CONFORMAL_INTERVALS})


@dataclass
class Trained:
    model: Any
    history: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per epoch, columns are metrics
    info: dict[str, Any] = field(default_factory=dict)  # e.g. best_epoch, parameter count


def train_torch(
    module,
    task,
    train,
    val,
    settings: ProjectSettings,
    /,  # so ``info`` may hold a "train" or "val" count (data.sizes() does)
    *,
    on_epoch,
    checkpoint_dir: Path,
    train_settings=None,
    **info: Any,
) -> Trained:
    """Train a torch ``module`` on ``task`` with the shared loop, the way every torch project does: the project's
    ``train`` section (or ``train_settings``), device and seed, resumable from ``checkpoint_dir``, no progress bar
    (the flow logs each epoch). Returns the module on the CPU in eval mode, one history row per epoch, and the
    info every such project records (best epoch, early stop, parameter count) with the project's own ``info``."""
    from components.models.params import count_parameters
    from components.training.loop import fit, resolve_device

    result = fit(
        module,
        task,
        train,
        val,
        train_settings or settings.train,
        resolve_device(settings.device),
        seed=settings.seed,
        on_epoch=on_epoch,
        checkpoint_dir=checkpoint_dir,
        resume=True,
        progress=False,
    )
    info = {
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "parameters": count_parameters(module),
        **info,
    }
    return Trained(module.cpu().eval(), pd.DataFrame(result.as_rows()), info)


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

    def with_calibration(self, data: Any, settings: ProjectSettings) -> Any:
        """``data`` (a split dataclass with ``X_train``/``y_train`` and ``X_cal``/``y_cal`` fields) with its
        conformal calibration split, as ``prepare`` returns it when a ``conformal:`` section is present: with
        ``calibrate_on: validation`` the validation split itself, else ``conformal.calibration`` of the training rows
        (stratified for a classifier), which then never train. Unchanged without the section, or when ``prepare``
        carved the split itself."""
        if not self.capabilities & CONFORMAL or settings.conformal is None or data.y_cal is not None:
            return data
        if settings.conformal.calibrate_on == "validation":
            if getattr(data, "X_val", None) is None:
                raise SettingsError(
                    f"projects.{self.name}.conformal.calibrate_on: {self.name} has no validation split to calibrate "
                    "on; use held_out"
                )
            return dataclasses.replace(data, X_cal=data.X_val, y_cal=data.y_val)
        from components.data.splits import hold_out_calibration

        stratify = Capability.CONFORMAL_SETS in self.capabilities
        return hold_out_calibration(data, settings.conformal.calibration, settings.seed, stratify=stratify)

    def conformal_model(self, trained: Trained) -> Any:
        """What the conformal stage calibrates: a classifier with ``classes_`` and ``predict_proba`` over the data's
        ``X_*`` rows, or a regressor with ``predict``; the trained model itself unless a project wraps it."""
        return trained.model

    def score(self, model: Any, data: Any, settings: ProjectSettings) -> dict[str, float]:
        """Test metrics (keys as in ``evaluate``) of a served model: anything with ``predict(inputs) -> DataFrame``,
        such as a loaded registered pyfunc model. The promotion gate scores champion and challenger with this on
        the same, current test split of ``data`` (from ``prepare``)."""
        raise NotImplementedError(f"project {self.name!r} cannot score a registered model yet (Project.score)")
