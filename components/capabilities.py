"""What a project's code can do beyond the required stages, declared, so params.yaml can be checked against it.

A project declares its capabilities (``CAPABILITIES`` next to its settings in components/projects/settings/,
read by the catalog and by ``Project.capabilities``); a settings section that asks for an optional stage
requires one (``Section.requirement``). The loader matches the two when params.yaml loads, so a section
asking for something the project cannot do fails ``dlfolio check`` in seconds instead of after training.

The protocols say what the optional stages call on the objects a project hands them. They live here, with the
standard library alone, so training/ and serving/ (torch, numpy, no pydantic) can name them too.
"""

from __future__ import annotations

import enum
from typing import Any, Protocol, runtime_checkable


class Capability(enum.Enum):
    CONFORMAL_SETS = "conformal sets"  # calibrated prediction sets, served with the model (classifiers)
    CONFORMAL_INTERVALS = "conformal intervals"  # calibrated prediction intervals, served with the model (regressors)
    ACTIVE_LEARNING = "active learning"  # query strategies simulated on the training pool
    PROMOTION_SCORING = "promotion scoring"  # score() of a served model: what the scheduled promotion gate compares
    MC_SAMPLING = "MC-dropout sampling"  # predict_proba_samples: what the Bayesian query strategies (bald, ...) call
    DISTRIBUTED_TRAINING = "distributed training"  # train() under torchrun: the shared trainer's DDP (train.gpus > 1)

    def __str__(self) -> str:
        return self.value


@runtime_checkable
class ConformalServing(Protocol):
    """A served predictor that can carry a fitted conformal calibrator (components/conformal/calibration.py) and
    then returns the calibrated set or interval with each prediction."""

    def with_conformal(self, calibrator: Any, confidence: float) -> ConformalServing: ...

    def predict_frame(self, inputs: Any) -> Any: ...


@runtime_checkable
class ProbabilisticClassifier(Protocol):
    """A scikit-learn classifier as modAL, MAPIE and the conformal stage see it (``classes_`` once fitted)."""

    def fit(self, X: Any, y: Any) -> ProbabilisticClassifier: ...

    def predict_proba(self, X: Any) -> Any: ...

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...

    def set_params(self, **params: Any) -> ProbabilisticClassifier: ...


@runtime_checkable
class MCDropoutClassifier(ProbabilisticClassifier, Protocol):
    """A classifier that samples its predictive distribution: BALD, power BALD and variation ratios need it."""

    def predict_proba_samples(self, X: Any, n_samples: int = 20) -> Any: ...
