"""A hyperparameter sweep as one Prefect flow: the project's own pipeline once per configuration of a grid.

    validate every configuration -> [project pipeline per configuration] -> compare -> best -> [write back]

The sweep flow owns an MLflow parent run; each configuration is a task running the project pipeline as a
subflow whose MLflow run is a child of it (params: the full settings with the overrides, metrics: the project's
test metrics). Swept runs never register or promote a model and never touch outputs/PROJECT: only the parent
records the comparison (sweep/comparison.csv and .png) and the best configuration. A configuration that raises
or diverges is a failed row of the table; the others still run, and it is never the best.

The configurations are concurrent Prefect task runs on the flow's task runner (flows/fanout.py): a local Dask
cluster of ``workers`` processes by default, a Dask cluster by address, or one at a time in this process.
``search="optuna"`` replaces the grid by an Optuna search over the same ``--set`` space (listed values are
categorical, ``LOW..HIGH`` ranges numeric): ``trials`` trials, asked ``batch`` at a time (the workers) and told
their metric when the batch is done, sampled by TPE seeded with the project's seed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import yaml
from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from components.evaluation.report import Report
from components.grid import space_text
from components.projects import get_project, settings_schemas
from components.settings import FanoutSettings
from components.tracking import runs as tracking
from components.tracking import sweep
from components.tracking.report import log_report
from flows import fanout as fan
from flows.pipeline import project_pipeline


@task(name="sweep-config", task_run_name="{name}", cache_policy=NO_CACHE)
def run_config(
    project: str, params: str, root: str, overrides: dict[str, Any], name: str, parent_run_id: str, outputs_root: str
) -> dict:
    started = time.time()
    # Prefect formats a run name as a template: a mapping value ({name: mlp}) must not read as a placeholder
    out = project_pipeline.with_options(flow_run_name=name.replace("{", "{{").replace("}", "}}"))(
        project=project,
        params=params,
        root=root,
        overrides=overrides,
        register_model=False,
        parent_run_id=parent_run_id,
        outputs_root=outputs_root,
    )
    client = MlflowClient()
    # which process ran it (pid, Dask worker), and when the task ran there: its MLflow run is only the part
    # after the pipeline's first steps, which the first configuration on a fresh worker takes longer to reach
    span = {"fanout.task_started_ms": str(int(started * 1000)), "fanout.task_ended_ms": str(int(time.time() * 1000))}
    for key, value in (fan.worker_identity() | span).items():
        client.set_tag(out["run_id"], key, value)
    return out


@task(name="write-best", cache_policy=NO_CACHE)
def write_best(params: Path, project: str, overrides: dict[str, Any]) -> None:
    sweep.write_best(params, project, overrides)
    get_run_logger().info("wrote %s into %s (projects.%s)", sweep.label(overrides), params, project)


def child_run_ids(parent_run_id: str, experiment_id: str) -> dict[str, str]:
    """Run name -> run id of the parent's children, failed ones included (their flow never returned an id)."""
    runs = MlflowClient().search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'")
    return {r.data.tags.get("mlflow.runName", ""): r.info.run_id for r in runs}


@flow(
    name="sweep", flow_run_name="sweep-{project}", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=1)
)  # one configuration at a time in this process; run_sweep(fanout=...) puts them on Dask
def sweep_flow(
    project: str,
    grid: dict[str, Any],
    params: str = "params.yaml",
    root: str = ".",
    metric: str | None = None,
    goal: str | None = None,
    write_back: bool = False,
    max_runs: int = 32,
    fixed: dict[str, Any] | None = None,
    study: str | None = None,
    montage: str | None = None,
    search: str = "grid",
    trials: int = 8,
    batch: int = 1,
) -> dict:
    """Run ``project``'s pipeline for every configuration in ``grid`` (dotted key -> values; the cartesian
    product), compare them on ``metric`` (default: the project's primary metric) and return the table and
    the best configuration; ``write_back`` writes it into params.yaml.

    ``fixed`` overrides apply to every configuration without being compared (a study's small epochs);
    ``study`` names the params.yaml study this sweep runs (tag ``study``); ``montage`` names a figure every
    configuration logs (plots/<montage>.png), tiled into one figure on the parent (sweep/<montage>.png).

    ``search="optuna"``: ``grid`` is a search space (values: a list, categorical, or a ``Range``) and Optuna
    picks ``trials`` configurations, ``batch`` at a time, each told its metric once its batch is done."""
    logger = get_run_logger()
    root_dir = Path(root).resolve()
    spec = get_project(project)
    fixed = dict(fixed or {})
    if search not in ("grid", "optuna"):
        raise sweep.SweepError(f"search {search!r}: expected grid or optuna")
    if search == "grid":
        configs = sweep.expand_grid(grid)
        if len(configs) > max_runs:
            raise sweep.SweepError(
                f"the grid has {len(configs)} configurations, more than max_runs={max_runs}; "
                "sweep fewer values or raise --max-runs"
            )
        probes = configs
    else:
        if trials > max_runs:
            raise sweep.SweepError(f"{trials} trials are more than max_runs={max_runs}; ask fewer or raise --max-runs")
        probes = sweep.probe_configs(grid)  # every listed value and both ends of every range
    settings = sweep.validate_configs(root_dir / params, project, [fixed | c for c in probes], settings_schemas())[0]
    metric = metric or spec.primary_metric
    higher = sweep.metric_goal(metric, spec.primary_metric, spec.higher_is_better, goal)
    tracking.configure(root_dir)
    commit, dirty = tracking.git_commit(root_dir)
    tags = {
        "prefect.flow_run_id": str(flow_run.id),
        "git.commit": commit,
        "git.dirty": str(dirty),
        "project": project,
        "sweep": "parent",
        "sweep.search": search,
        **({"study": study} if study else {}),
    }
    scratch = Path(tempfile.mkdtemp(prefix=f"dlfolio-sweep-{project}-"))  # per-config outputs; MLflow keeps the record
    try:
        with tracking.parent_run(
            settings.experiment or project, root_dir, flow_run.name or f"sweep-{project}", tags
        ) as run:
            parent_id = run.info.run_id
            counts = {"sweep.configs": len(configs)} if search == "grid" else {"sweep.trials": trials}
            mlflow.log_params(
                {f"sweep.grid.{k.replace('+', ' ')}": space_text(v) for k, v in grid.items()}
                | {"sweep.metric": metric, "sweep.goal": "max" if higher else "min", "sweep.search": search}
                | counts
                | {f"sweep.fixed.{k}": sweep.format_value(v) for k, v in fixed.items()}
            )

            def run_batch(batch_configs: list[dict[str, Any]], batch_names: list[str], first: int) -> list[dict]:
                """The configurations as concurrent tasks; a row per configuration, failed ones too."""
                futures = [
                    run_config.submit(
                        project, params, str(root_dir), fixed | config, name, parent_id, str(scratch / f"{i:03d}")
                    )
                    for i, (config, name) in enumerate(zip(batch_configs, batch_names), first)
                ]
                rows = []
                for config, name, future in zip(batch_configs, batch_names, futures):
                    try:
                        out = future.result()
                        metrics = {k: v for k, v in out.items() if k not in ("project", "run_id", "model_version")}
                        rows.append({"overrides": config, "status": "ok", "metrics": metrics, "run_id": out["run_id"]})
                    except Exception as exc:  # a failed configuration is a row of the table, not the end of the sweep
                        rows.append({"overrides": config, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
                        logger.warning("configuration %s failed: %s", name, rows[-1]["error"])
                return rows

            if search == "grid":
                names = [sweep.label(c) for c in configs]
                results = run_batch(configs, names, 0)
            else:
                configs, names, results = optuna_search(grid, trials, batch, higher, settings.seed, metric, run_batch)
                logger.info("optuna: %d trials, %d at a time", trials, batch)
            ids = child_run_ids(parent_id, run.info.experiment_id)
            for name, result in zip(names, results):
                result.setdefault("run_id", ids.get(name, ""))

            table = sweep.comparison_table(results, metric)
            figure = sweep.comparison_figure(configs, table, metric, higher)
            figures = {"comparison": figure}
            if montage:
                figures[montage] = sweep.montage_figure(
                    [(n, r["run_id"]) for n, r in zip(names, results) if r["status"] == "ok"], f"plots/{montage}.png"
                )
            log_report(Report({}, figures, {"comparison": table}), artifact_dir="sweep")
            best = sweep.best_row(table, metric, higher)
            if best is None:
                raise sweep.SweepError(
                    f"every configuration failed (the first: {table.loc[0, 'error']}); "
                    f"see sweep/comparison.csv of MLflow run {parent_id}"
                )
            best_config, best_value = configs[best], float(table.loc[best, metric])
            mlflow.log_params({f"best.{k}": sweep.format_value(v) for k, v in best_config.items()})
            mlflow.log_metric(f"best_{metric}", best_value)
            mlflow.set_tags({"sweep.best_run_id": table.loc[best, "run_id"], "sweep.best": names[best]})
            if search == "optuna":
                mlflow.set_tag("sweep.best_trial", str(best))
            runner_up = sweep.runner_up_row(table, metric, higher)
            margin = None
            if runner_up is not None:  # how far the best is ahead of the next configuration, in the metric's units
                margin = abs(best_value - float(table.loc[runner_up, metric]))
                mlflow.log_metric(f"margin_{metric}", margin)
                mlflow.set_tag("sweep.runner_up", names[runner_up])
            mlflow.log_text(
                yaml.safe_dump(
                    {"project": project, "metric": metric, "value": best_value, "overrides": best_config},
                    sort_keys=False,
                ),
                "sweep/best_config.yaml",
            )
            logger.info("best of %d: %s with %s=%.4g", len(configs), names[best], metric, best_value)
            if write_back:
                write_best(root_dir / params, project, best_config)
                mlflow.set_tag("sweep.written_to", str(root_dir / params))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "project": project,
        "run_id": parent_id,
        "metric": metric,
        "higher_is_better": higher,
        "table": table.to_dict("records"),
        "best": best_config,
        "best_value": best_value,
        "best_run_id": table.loc[best, "run_id"],
        "best_name": names[best],
        "runner_up": None if runner_up is None else names[runner_up],
        "runner_up_value": None if runner_up is None else float(table.loc[runner_up, metric]),
        "margin": margin,
        "study": study,
        "written": write_back,
        "search": search,
    }


def optuna_search(
    space: dict[str, Any], trials: int, batch: int, higher: bool, seed: int, metric: str, run_batch
) -> tuple[list[dict], list[str], list[dict]]:
    """``trials`` Optuna trials over ``space``, ``batch`` asked at a time and run together by ``run_batch``;
    each trial is told its ``metric`` (a failed or diverged one: FAIL). Returns configs, names and rows in
    trial order; trial N's child run is named ``trial-N KEY=VALUE ...``."""
    from components.tracking.search import make_study, suggest, tell

    study = make_study(higher, seed)
    configs: list[dict] = []
    names: list[str] = []
    results: list[dict] = []
    while len(configs) < trials:
        asked = [study.ask() for _ in range(min(batch, trials - len(configs)))]
        batch_configs = [suggest(trial, space) for trial in asked]
        batch_names = [f"trial-{trial.number} {sweep.label(c)}" for trial, c in zip(asked, batch_configs)]
        rows = run_batch(batch_configs, batch_names, len(configs))
        for trial, row in zip(asked, rows):
            value = row.get("metrics", {}).get(metric) if row["status"] == "ok" else None
            tell(study, trial, None if value is None else float(value))
        configs += batch_configs
        names += batch_names
        results += rows
    return configs, names, results


def run_sweep(
    project: str,
    grid: dict[str, Any],
    fanout: FanoutSettings | None = None,
    flow_run_name: str | None = None,
    **kwargs,
) -> dict:
    """The sweep with its configurations on ``fanout`` (default: ``FanoutSettings.resolve()``, a local Dask
    cluster of 2 worker processes unless DLFOLIO_WORKERS / DLFOLIO_DASK_ADDRESS say otherwise).

    Concurrent configurations run in processes of their own, never threads of one: torch has one random
    generator per process (initial weights, dropout, seeded by the trainer with the configuration's seed), so
    threads drew from each other's streams and a configuration scored differently beside others than alone. On
    a Dask worker each configuration gets exactly the numbers it gets in a serial sweep. An Optuna search asks
    as many trials at a time as there are workers (at an address: ``workers`` too)."""
    fanout = fanout or FanoutSettings.resolve()
    kwargs.setdefault("batch", max(1, fanout.workers))
    with fan.cluster(fanout) as where:
        runner = sweep_flow.with_options(task_runner=fan.task_runner(where))
        if flow_run_name:  # a study's sweep: study-PROJECT-NAME in Prefect and MLflow
            runner = runner.with_options(flow_run_name=flow_run_name)
        return runner(project=project, grid=grid, **kwargs)
