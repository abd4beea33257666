"""An Optuna search over a sweep's space: ``--set`` values are categorical choices, ``LOW..HIGH`` ranges are
numeric intervals (components/grid.py ``Range``). Trials are asked and told (ask/tell), so the flow that runs
them (flows/sweep.py) can run a batch at a time on its workers; the sampler is TPE seeded with the project's
seed, so the same search on the same results asks the same configurations. Prefect-free; Optuna is imported
only when a search runs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from components.grid import Range, format_value

SCALARS = (type(None), bool, int, float, str)


def make_study(higher_is_better: bool, seed: int, name: str = "dlfolio-sweep"):
    """An in-memory study, TPE seeded; ``constant_liar`` keeps a batch asked before any of it is told apart."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    return optuna.create_study(
        study_name=name, direction="maximize" if higher_is_better else "minimize", sampler=sampler
    )


def suggest(trial, space: Mapping[str, Sequence[Any] | Range]) -> dict[str, Any]:
    """The trial's configuration (dotted key -> value; a zipped ``a+b`` key gives both)."""
    config: dict[str, Any] = {}
    for key, domain in space.items():
        if isinstance(domain, Range):
            if domain.integer:
                step = int(domain.step or 1)
                value: Any = trial.suggest_int(key, int(domain.low), int(domain.high), step=step, log=domain.log)
            else:
                value = trial.suggest_float(key, domain.low, domain.high, step=domain.step, log=domain.log)
        elif all(isinstance(v, SCALARS) for v in domain):
            value = trial.suggest_categorical(key, list(domain))
        else:  # lists ([64, 32]) are no Optuna choices: choose among their texts
            texts = [format_value(v) for v in domain]
            value = domain[texts.index(trial.suggest_categorical(key, texts))]
        config.update(zip(key.split("+"), value) if "+" in key else {key: value})
    return config


def tell(study, trial, value: float | None) -> None:
    """A finite metric is the trial's value; a failed or diverged trial is FAIL (never the best)."""
    import optuna

    if value is None or not math.isfinite(value):
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        study.tell(trial, value)


def within(space: Mapping[str, Sequence[Any] | Range], config: Mapping[str, Any]) -> bool:
    """Whether ``config`` lies in ``space``: a listed value of every categorical key, inside every range."""
    for key, domain in space.items():
        keys = key.split("+")
        value = [config[k] for k in keys] if len(keys) > 1 else config[key]
        if isinstance(domain, Range):
            if not domain.low <= value <= domain.high or (domain.integer and value != int(value)):
                return False
        elif value not in list(domain):
            return False
    return True
