"""A project's named hyperparameter studies (params.yaml ``projects.P.studies``), each run as one sweep.

A study is data: a grid of overrides in the sweep's ``--set`` language, fixed overrides, the compared metric
(components/settings.py ``StudySettings``). Running one is running the sweep flow (flows/sweep.py) on its grid:
one MLflow parent run tagged ``study=NAME`` with a child run per configuration, sweep/comparison.csv and .png,
the best configuration and its margin over the runner-up. Studies never register a model, never write
outputs/PROJECT and are no DVC stage: `make run` / `dvc repro` never runs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from components.errors import DlfolioError
from components.projects import settings_schemas
from components.settings import ProjectSettings, SettingsError, StudySettings, load_project_settings


class StudyError(DlfolioError, ValueError):
    """A study asked for does not exist or cannot run as asked."""


def project_studies(params: str | Path, project: str) -> dict[str, StudySettings]:
    """The project's studies, validated (every configuration of each) with params.yaml."""
    settings: ProjectSettings = load_project_settings(params, project, settings_schemas())
    return dict(settings.studies)


def select(studies: Mapping[str, StudySettings], names: Sequence[str], project: str) -> list[str]:
    """``names`` in the order given (all studies when empty); an unknown name is an error listing the known."""
    if not studies:
        raise StudyError(f"projects.{project} has no studies: section in params.yaml")
    unknown = [n for n in names if n not in studies]
    if unknown:
        raise StudyError(f"projects.{project}.studies: no study {unknown[0]!r}; known: {', '.join(studies)}")
    return list(names) or list(studies)


def plan(study: StudySettings, extra: Mapping[str, Sequence[Any]] | None = None) -> tuple[dict, dict]:
    """(grid, fixed) of ``study`` with ``extra`` (--set KEY=V1,V2 of the command line): a swept key's values are
    replaced (fewer configurations for a quick run), another key with one value is fixed, with several swept."""
    grid, fixed = study.grid_values(), study.fixed_values()
    for key, values in (extra or {}).items():
        zipped = [k for k in grid if "+" in k and key != k and set(key.split("+")) & set(k.split("+"))]
        if zipped:
            raise StudyError(f"--set {key}: the study sweeps it together with others as {zipped[0]}; set {zipped[0]}")
        if key in grid or len(values) > 1:
            grid[key] = list(values)
            fixed.pop(key, None)
        else:
            fixed[key] = values[0]
    return grid, fixed


def run_studies(
    project: str,
    names: Sequence[str] = (),
    params: str = "params.yaml",
    root: str = ".",
    extra: Mapping[str, Sequence[Any]] | None = None,
    fanout=None,
) -> list[dict]:
    """Run the named studies (all by default) one after the other, each one's configurations on ``fanout``
    (a ``FanoutSettings``; default: from the environment, see flows/fanout.py); returns each sweep's result."""
    from components.tracking.sweep import SweepError, expand_grid, validate_configs
    from flows.sweep import run_sweep

    studies = project_studies(Path(root) / params, project)
    chosen = select(studies, names, project)
    plans = {}
    for name in chosen:  # every study is checked with the command line's overrides before the first one runs
        grid, fixed = plan(studies[name], extra)
        try:
            validate_configs(Path(root) / params, project, [fixed | c for c in expand_grid(grid)], settings_schemas())
        except SettingsError as exc:
            raise SettingsError(f"study {name}: {exc}") from None
        plans[name] = grid, fixed
    results = []
    for name in chosen:
        study, (grid, fixed) = studies[name], plans[name]
        runner_kwargs = dict(
            params=params,
            root=root,
            metric=study.metric,
            goal=study.goal,
            max_runs=max(study.max_runs, len(expand_grid(grid))),
            fixed=fixed,
            study=name,
            montage=study.montage,
        )
        try:
            results.append(
                run_sweep(project, grid, fanout=fanout, flow_run_name=f"study-{project}-{name}", **runner_kwargs)
            )
        except SweepError as exc:  # every configuration failed: the other studies still run
            results.append({"study": name, "failed": str(exc)})
    return results
