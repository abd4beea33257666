"""Promotion as Prefect flows: the gate alone, and retrain-then-promote (what a project's cron schedule runs).

    promote-model:        prepare the current test split -> score challenger and champion on it -> move `champion`?
    retrain-and-promote:  `dvc repro run-P` (or project-pipeline outside DVC) -> promote-model for its version

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
from flows import artifacts
from flows.locks import promotion_lock
from flows.preflight import load_settings, preflight
from flows.retries import TRANSIENT_IO_RETRIES


@task(name="prepare-test-data", cache_policy=NO_CACHE)
def prepare(spec: Project, settings: ProjectSettings):
    return spec.prepare(settings)


@task(name="gate", cache_policy=NO_CACHE, **TRANSIENT_IO_RETRIES)  # the registry: re-decides from fresh reads
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
        lock=promotion_lock(spec.name),
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
    artifacts.publish(
        f"{project}-promotion", artifacts.promotion_markdown(decision.to_dict()), f"{project}: {decision.summary()}"
    )
    return decision.to_dict()


def dvc_stage(root: Path, project: str, params: str) -> str | None:
    """The project's DVC stage in ``root`` (a DVC repository whose dvc.yaml has ``run-<project>``), if the flow
    uses the stage's own params file; otherwise None."""
    import yaml

    dvc_yaml = root / "dvc.yaml"
    if params != "params.yaml" or not (root / ".dvc").is_dir() or not dvc_yaml.is_file():
        return None
    stage = f"run-{project}"
    return stage if stage in (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {}) else None


@task(name="dvc-repro", cache_policy=NO_CACHE)
def repro(root: Path, project: str, stage: str) -> dict:
    """`dvc repro STAGE`: the same stage `make run` runs, so DVC's lock and outputs stay in step with the
    registry (a retrain outside DVC left `dvc status` flagging the stage). Returns the registration the
    outputs record: a new version if the stage ran, the one its outputs already hold if it was up to date."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_API_URL

    from components.errors import DlfolioError
    from components.tracking.outputs import REGISTRATION

    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    env = {**os.environ, "DLFOLIO_ROOT_FLOW_RUN_ID": str(flow_run.root_flow_run_id)}
    if PREFECT_API_URL.value():
        env["PREFECT_API_URL"] = PREFECT_API_URL.value()  # the stage's `dlfolio run` reports to this server
    done = subprocess.run([dvc, "repro", stage], cwd=root, env=env, capture_output=True, text=True)
    get_run_logger().info("dvc repro %s: %s", stage, done.stdout.strip().splitlines()[-1:] or "")
    if done.returncode != 0:
        raise DlfolioError(f"dvc repro {stage} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return json.loads((root / "outputs" / project / "model" / REGISTRATION).read_text())


@flow(name="retrain-and-promote", flow_run_name="retrain-{project}")
def retrain_and_promote(project: str, params: str = "params.yaml", root: str = ".") -> dict:
    """Retrain the project, then put the version it registered through the promotion gate. In a DVC
    repository that is its stage (`dvc repro run-P`), so DVC records the run; elsewhere the pipeline itself."""
    from flows.pipeline import project_pipeline

    root_dir = Path(root).resolve()
    stage = dvc_stage(root_dir, project, params)
    if stage is not None:
        result = repro(root_dir, project, stage)
        version = int(result["version"])
    else:
        result = project_pipeline(project=project, params=params, root=root)
        version = int(result["model_version"])
    decision = promote_model(project=project, version=version, params=params, root=root)
    return {"pipeline": result, "promotion": decision}
