"""Promotion as Prefect flows: the gate alone, and retrain-then-promote (what a project's cron schedule runs).

    promote-model:        prepare the current test split -> score challenger and champion on it -> move `champion`?
    retrain-and-promote:  project-pipeline (registers a new version) -> promote-model for that version

The gate itself is ``components.tracking.registry.promote``; these flows only supply the project's data and scorer.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from components.projects import Project
from components.settings import ProjectSettings
from components.tracking import registry
from components.tracking import runs as tracking
from flows.preflight import load_settings, preflight


@task(name="prepare-test-data", cache_policy=NO_CACHE)
def prepare(spec: Project, settings: ProjectSettings):
    return spec.prepare(settings)


@task(name="gate", cache_policy=NO_CACHE)
def gate(
    spec: Project,
    settings: ProjectSettings,
    data,
    version: int | None,
    force: bool,
    reason: str | None,
    drift_tolerance: float = registry.DRIFT_TOLERANCE,
) -> registry.Decision:
    metric = spec.primary_metric

    def score(model) -> float:
        metrics = spec.score(model, data, settings)
        if metric not in metrics:
            raise KeyError(f"{spec.name}: score() returned {sorted(metrics)}, not the primary metric {metric!r}")
        return metrics[metric]

    data_md5 = tracking.directory_md5(settings.data_dir) if settings.data_dir.is_dir() else None
    return registry.promote(
        MlflowClient(),
        spec.name,
        score,
        metric=metric,
        higher_is_better=spec.higher_is_better,
        version=version,
        force=force,
        reason=reason,
        data_md5=data_md5,
        drift_tolerance=drift_tolerance,
        loader=partial(registry.load_model, experiment=settings.experiment or spec.name),
    )


@flow(name="promote-model", flow_run_name="promote-{project}")
def promote_model(
    project: str,
    version: int | None = None,
    force: bool = False,
    reason: str | None = None,
    params: str = "params.yaml",
    root: str = ".",
    drift_tolerance: float = registry.DRIFT_TOLERANCE,
) -> dict:
    """Move alias `champion` to the candidate (``version`` or alias `challenger`) if it beats the champion on the
    project's current test data and the champion still scores there as it did at registration (within
    ``drift_tolerance``), or if ``force`` (with a ``reason``). Returns the decision."""
    root_dir = Path(root).resolve()
    if force and not (reason and reason.strip()):
        raise ValueError("a forced promotion needs a reason (--reason TEXT); it is recorded on the version")
    preflight(project, version, params, root_dir)  # fail before loading data
    spec, settings = load_settings(project, params, root_dir)
    data = prepare(spec, settings)
    decision = gate(spec, settings, data, version, force, reason, drift_tolerance)
    for repair in decision.repairs:
        get_run_logger().warning("repaired: %s", repair)
    get_run_logger().info(decision.summary())
    return decision.to_dict()


@flow(name="retrain-and-promote", flow_run_name="retrain-{project}")
def retrain_and_promote(project: str, params: str = "params.yaml", root: str = ".") -> dict:
    """Run the project's pipeline, then put the version it registered through the promotion gate."""
    from flows.pipeline import project_pipeline

    result = project_pipeline(project=project, params=params, root=root)
    decision = promote_model(project=project, version=int(result["model_version"]), params=params, root=root)
    return {"pipeline": result, "promotion": decision}
