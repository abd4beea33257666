"""The project pipeline as one Prefect flow; it reads like the diagram in DESIGN.md.

    validate -> preprocess/augment -> [active learning] -> train -> [conformal] -> evaluate -> register

Each task is a thin call into a project's stage method (components/projects); what a stage reports (a
``Report``: metrics, figures, tables, child runs, files) is logged by one function,
``components.tracking.report.log_report``, into the MLflow run and the run's outputs. The flow owns the MLflow
parent run: tagged with the Prefect flow-run id, the git commit and the data hashes, FAILED if any stage
raises, and nothing is registered unless every stage before registration succeeded.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import mlflow
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from components.active.stage import ActiveLearningResult, budget_comparison, restrict_training, run_active_learning
from components.capabilities import Capability
from components.conformal.stage import ConformalCalibration, run_conformal
from components.evaluation.report import Report
from components.projects import Project, Trained, get_project, settings_schemas
from components.serving.predictor import requirements
from components.settings import FanoutSettings, ProjectSettings, load_project_settings
from components.tracking import runs as tracking
from components.tracking.outputs import RunOutputs
from components.tracking.report import log_report
from components.validation.expectations import DataValidationError, ValidationReport
from flows import artifacts
from flows.fanout import mapper
from flows.retries import TRANSIENT_IO_RETRIES

COMPONENTS_DIR = Path(__file__).resolve().parents[1] / "components"
CONFORMAL = frozenset({Capability.CONFORMAL_SETS, Capability.CONFORMAL_INTERVALS})


def wants_active_learning(project: Project, settings: ProjectSettings) -> bool:
    """The optional stages run only where the project's section asks for them (the loader accepts an
    ``active_learning:`` or ``conformal:`` section only for a project with the capability); otherwise the flow
    has no task run for them at all, rather than an empty one."""
    return Capability.ACTIVE_LEARNING in project.capabilities and settings.active_learning is not None


def wants_conformal(project: Project, settings: ProjectSettings) -> bool:
    return bool(project.capabilities & CONFORMAL) and settings.conformal is not None


@task(name="validate", cache_policy=NO_CACHE)
def validate_data(project: Project, settings: ProjectSettings, root: Path) -> ValidationReport:
    try:
        report = project.validate(settings)
    except DataValidationError as exc:
        mlflow.log_text(tracking.without_root(exc.report.to_json(), root), "validation/report.json")
        raise
    mlflow.log_text(tracking.without_root(report.to_json(), root), "validation/report.json")
    get_run_logger().info(report.summary())
    return report


@task(name="preprocess", cache_policy=NO_CACHE)
def preprocess(project: Project, settings: ProjectSettings):
    return project.prepare(settings)


@task(name="active-learning", cache_policy=NO_CACHE)
def active_learning(project: Project, data, settings: ProjectSettings, outputs: RunOutputs) -> ActiveLearningResult:
    """Every configured query strategy against random on the training pool, a child run per round; with
    ``train_on: selected`` each runs up to the label budget, and the result holds what each one labelled."""
    al = settings.active_learning
    logger = get_run_logger()

    def on_round(strategy: str, result) -> None:
        logger.info(
            "active learning %s round %d: %d labels, test accuracy %.4f",
            strategy,
            result.round,
            result.labels,
            result.accuracy,
        )

    started = time.perf_counter()
    fanout = FanoutSettings.resolve()  # the strategies as concurrent tasks on Dask (flows/fanout.py)
    result = run_active_learning(project, data, settings, al, on_round, map_calls=mapper(fanout))
    result.report.metrics["al_seconds"] = time.perf_counter() - started  # what the stage costs (params.yaml notes it)
    log_report(result.report, outputs.staging)
    logger.info("active learning: %s", ", ".join(f"{k}={v:.4g}" for k, v in result.report.metrics.items()))
    return result


@task(name="label-budget-comparison", cache_policy=NO_CACHE)
def compare_at_budget(
    project: Project, trained: Trained, data, settings: ProjectSettings, result: ActiveLearningResult, outputs
) -> Report:
    """``train_on: selected``: the registered model's test accuracy beside the all-labels and random-at-budget
    models' (same recipe, same test split), and the selected indices as an artifact."""
    comparison = budget_comparison(project, trained.model, data, settings, result)
    log_report(comparison, outputs.staging)
    get_run_logger().info("label budget: %s", ", ".join(f"{k}={v:.4g}" for k, v in comparison.metrics.items()))
    return comparison


@task(name="train", cache_policy=NO_CACHE)
def train(project: Project, data, settings: ProjectSettings, outputs: RunOutputs) -> Trained:
    logger = get_run_logger()

    def on_epoch(stats: dict) -> None:
        epoch = int(stats.pop("epoch"))
        mlflow.log_metrics({k: float(v) for k, v in stats.items()}, step=epoch)
        logger.info("epoch %d: %s", epoch, ", ".join(f"{k}={v:.4g}" for k, v in stats.items()))

    # Resumable: a run killed mid-training continues from the last epoch of the same settings and data.
    data_md5 = tracking.directory_md5(settings.data_dir) if settings.data_dir.is_dir() else "missing"
    checkpoints = outputs.checkpoint_dir(settings.model_dump(mode="json", exclude={"studies"}), data_md5)
    started = time.perf_counter()
    processes = settings.train.gpus if Capability.DISTRIBUTED_TRAINING in project.capabilities else 1
    if processes > 1:  # DDP: the project's own train() in each of N torchrun processes, rank 0 logging here
        from components.projects.distributed import launch

        logger.info("training on %d torchrun processes", processes)
        trained = launch(
            project,
            data,
            settings,
            processes=processes,
            checkpoint_dir=checkpoints,
            tracking_uri=mlflow.get_tracking_uri(),
            run_id=mlflow.active_run().info.run_id,
        )
    else:
        trained = project.train(data, settings, on_epoch=on_epoch, checkpoint_dir=checkpoints)
    seconds = time.perf_counter() - started
    outputs.keep_model_files(checkpoints)
    mlflow.log_params({f"train.{k}": v for k, v in trained.info.items()})
    # Wall time of this run's training (a resumed run counts only its own part): a measurement, so a metric,
    # and `train.seconds` in metrics.json for the README's table (`dlfolio results`).
    mlflow.log_metric("train_seconds", seconds)
    trained.info["seconds"] = round(seconds, 1)
    return trained


@task(name="conformal", cache_policy=NO_CACHE)
def conformalize(
    project: Project, trained: Trained, data, settings: ProjectSettings, outputs: RunOutputs
) -> ConformalCalibration | None:
    """Calibrated sets/intervals on the calibration split, measured on the test split."""
    conformal = settings.conformal
    calibration = run_conformal(project.conformal_model(trained), data, conformal, seed=settings.seed)
    log_report(calibration.report, outputs.staging)
    get_run_logger().info("conformal (test): %s", calibration.summary())
    return calibration


@task(name="evaluate", cache_policy=NO_CACHE, **TRANSIENT_IO_RETRIES)  # writes to the tracking server
def evaluate(project: Project, trained: Trained, data, settings: ProjectSettings, outputs: RunOutputs) -> Report:
    evaluation = project.evaluate(trained, data, settings)
    log_report(evaluation, outputs.staging, metric_prefix="test_")
    get_run_logger().info("test: %s", ", ".join(f"{k}={v:.4f}" for k, v in evaluation.metrics.items()))
    return evaluation


@task(name="register", cache_policy=NO_CACHE, **TRANSIENT_IO_RETRIES)  # writes to the tracking server
def register(
    project: Project,
    trained: Trained,
    data,
    settings: ProjectSettings,
    evaluation: Report,
    outputs: RunOutputs,
    tags: dict[str, str],
    conformal: ConformalCalibration | None = None,
):
    import joblib

    from components.serving.signature import served_signature

    predictor, example = project.predictor(trained, data, settings)
    if conformal is not None:  # the served model returns the calibrated set / interval with the prediction
        # A report exists only for a project declaring CONFORMAL_SETS/INTERVALS, whose predictor is a
        # ConformalServing (tests/test_capabilities.py holds every catalog project to its declaration).
        predictor = predictor.with_conformal(conformal.served, conformal.served_confidence)
        tags = {
            **tags,
            "conformal.method": conformal.served_method,
            "conformal.confidence": str(conformal.served_confidence),
        }
    path = outputs.model_dir / "predictor.joblib"
    joblib.dump(predictor, path)
    signature = served_signature(example, predictor.predict_frame(example))
    metric = evaluation.metrics[project.primary_metric]
    version = tracking.register(
        project.name,
        str(COMPONENTS_DIR / "serving" / "pyfunc_model.py"),
        {"predictor": str(path)},
        [str(COMPONENTS_DIR)],
        example,
        signature,
        tags={**tags, "primary_metric": project.primary_metric, f"test_{project.primary_metric}": f"{metric:.6f}"},
        extra_requirements=requirements(predictor),
        published={"predictor": str(outputs.published_path(path))},
    )
    outputs.record_registration(project.name, version.version, tags["run_id"])
    get_run_logger().info(
        "registered %s version %s with alias '%s'", project.name, version.version, tracking.CHALLENGER
    )
    return version


@flow(name="project-pipeline", flow_run_name="{project}", log_prints=True)
def project_pipeline(
    project: str,
    params: str = "params.yaml",
    root: str = ".",
    overrides: dict[str, Any] | None = None,
    register_model: bool = True,
    parent_run_id: str | None = None,
    outputs_root: str | None = None,
) -> dict:
    """Validate, preprocess, train, evaluate and register one project; returns its test metrics.

    A sweep (flows/sweep.py) runs it per configuration: ``overrides`` (dotted path -> value) change the
    project's section, ``parent_run_id`` files the MLflow run as a child of the sweep's run,
    ``register_model=False`` leaves the registry alone and ``outputs_root`` keeps outputs/PROJECT (DVC's) intact.
    """
    root_dir = Path(root).resolve()
    spec = get_project(project)
    settings = load_project_settings(root_dir / params, project, settings_schemas(), overrides)
    if not settings.data_dir.is_absolute():
        settings = settings.model_copy(update={"data_dir": root_dir / settings.data_dir})
    tracking.configure(root_dir)
    commit, dirty = tracking.git_commit(root_dir)
    data_md5 = tracking.directory_md5(settings.data_dir) if settings.data_dir.is_dir() else "missing"
    tags = {
        "prefect.flow_run_id": str(flow_run.id),
        # A deployment's run (retrain-and-promote) holds this flow as a subflow: its id is the one the UI lists.
        # Run by `dvc repro` from a deployment's run (retrain-and-promote), the flow is a process of its own: the
        # deployment's run passes its id down.
        "prefect.root_flow_run_id": os.environ.get("DLFOLIO_ROOT_FLOW_RUN_ID") or str(flow_run.root_flow_run_id),
        "prefect.parent_flow_run_id": str(flow_run.parent_flow_run_id or ""),
        "git.commit": commit,
        "git.dirty": str(dirty),
        "data.md5": data_md5,
        "dvc.data_md5": tracking.dvc_data_md5(root_dir),
        "project": project,
    }
    outputs = RunOutputs(Path(outputs_root) if outputs_root else root_dir / "outputs", project).begin()
    try:
        with tracking.parent_run(
            settings.experiment or project, root_dir, flow_run.name or project, tags, parent_run_id=parent_run_id
        ) as run:
            # studies: what `dlfolio study` runs, not settings of this run
            tracking.log_params(settings.model_dump(mode="json", exclude={"studies"}), root_dir)
            report = validate_data(spec, settings, root_dir)
            data = preprocess(spec, settings)
            selecting = wants_active_learning(spec, settings) and settings.active_learning.train_on == "selected"
            al_result = (
                active_learning(spec, data, settings, outputs) if wants_active_learning(spec, settings) else None
            )
            # train_on: selected: the registered model trains on exactly the labels the strategy acquired
            train_data = restrict_training(data, al_result.selected(settings.active_learning)) if selecting else data
            trained = train(spec, train_data, settings, outputs)
            if selecting:
                compare_at_budget(spec, trained, data, settings, al_result, outputs)
            conformal = (
                conformalize(spec, trained, data, settings, outputs) if wants_conformal(spec, settings) else None
            )
            evaluation = evaluate(spec, trained, data, settings, outputs)
            outputs.write(
                evaluation.metrics,
                trained.info,
                json.loads(tracking.without_root(report.to_json(), root_dir)),
                spec.primary_metric,
            )
            version = (
                register(
                    spec, trained, data, settings, evaluation, outputs, {"run_id": run.info.run_id, **tags}, conformal
                )
                if register_model
                else None
            )
    except BaseException:
        outputs.discard()
        raise
    final = outputs.publish()
    logging.getLogger("dlfolio").info("outputs written to %s", final)
    artifacts.publish(
        f"{project}-results",
        artifacts.pipeline_markdown(
            project,
            evaluation.metrics,
            spec.primary_metric,
            artifacts.mlflow_run_link(mlflow.get_tracking_uri(), run.info.experiment_id, run.info.run_id),
            version.version if version else None,
            {k: tags[k] for k in ("git.commit", "git.dirty", "data.md5")},
        ),
        f"{project}: test metrics and registered version",
    )
    return {
        "project": project,
        "run_id": run.info.run_id,
        "model_version": version.version if version else None,
        **evaluation.metrics,
    }
