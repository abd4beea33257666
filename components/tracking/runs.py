"""MLflow tracking and registry with embedded defaults.

Default store: ``sqlite:///<root>/mlruns/mlflow.db`` with artifacts under ``<root>/mlruns/artifacts``; set
``MLFLOW_TRACKING_URI`` to use a tracking server instead. Nothing here runs at import time.

A run that dies without ending (kill -9, a power cut, the OOM killer) would stay RUNNING forever: each flow's
run records its process (tags ``dlfolio.host``, ``dlfolio.pid``, ``dlfolio.pid_start``), and the next flow run
in the experiment marks every RUNNING run whose process on this host is gone as KILLED, children included. A
SIGTERM or Ctrl-C ends the run KILLED at once (Prefect turns SIGTERM into an exception inside a flow; outside
one, ``parent_run`` installs a handler that does).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

CHALLENGER, CHAMPION = "challenger", "champion"
PREDICTOR_SHA256 = "predictor.sha256"  # version tag: the pickled predictor's hash, checked before it is loaded


def tracking_uri(root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlruns' / 'mlflow.db').resolve()}"


def configure(root: Path) -> str:
    """Point MLflow at the project's store; returns the tracking URI."""
    uri = tracking_uri(root)
    if uri.startswith("sqlite:///"):
        (root / "mlruns").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str, root: Path) -> str:
    client = MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if tracking_uri(root).startswith("sqlite:///"):  # a server decides its own artifact store
        location = (root / "mlruns" / "artifacts" / name).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


PID_TAG, HOST_TAG, PID_START_TAG = "dlfolio.pid", "dlfolio.host", "dlfolio.pid_start"


@contextmanager
def parent_run(
    experiment: str, root: Path, run_name: str, tags: Mapping[str, str], parent_run_id: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """One MLflow run per flow run; it ends FAILED (with the error as a tag) if the body raises, KILLED if it
    was interrupted (SIGTERM, Ctrl-C). With ``parent_run_id`` it is that run's child (a sweep's configuration),
    whichever thread it runs in. A top-level run first ends the experiment's runs left RUNNING by dead processes.
    """
    experiment_id = ensure_experiment(experiment, root)
    if parent_run_id is None:
        end_stale_runs(experiment_id)
    with (
        sigterm_raises(),
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=run_name,
            tags={**tags, **process_tags()},
            nested=parent_run_id is not None,
            parent_run_id=parent_run_id,
        ) as run,
    ):
        try:
            yield run
        except BaseException as exc:
            mlflow.set_tag("failure", without_root(f"{type(exc).__name__}: {exc}", root)[:4900])
            if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt, Prefect's TerminationSignal
                mlflow.end_run("KILLED")  # start_run's exit then finds it ended and leaves it
            raise


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises SystemExit(143) for the duration, so the run's failure path runs and ends it; only in the
    main thread and only where nothing else (Prefect's flow engine) handles SIGTERM already."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def process_tags(pid: int | None = None) -> dict[str, str]:
    pid = os.getpid() if pid is None else pid
    return {PID_TAG: str(pid), HOST_TAG: socket.gethostname(), PID_START_TAG: process_start(pid)}


def process_start(pid: int) -> str:
    """When the process started (clock ticks after boot, from /proc), so a reused pid is not taken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name in parentheses


def process_alive(pid: int, start: str = "") -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    return not start or not process_start(pid) or process_start(pid) == start


def end_stale_runs(experiment_id: str) -> list[str]:
    """Mark KILLED every RUNNING run of the experiment whose recorded process on this host has ended (and its
    RUNNING children); returns their ids. Runs of other hosts, or without the tags, are left alone."""
    client = MlflowClient()
    host = socket.gethostname()
    stale = []
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=5000):
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if tags.get(HOST_TAG) != host or not pid.isdigit() or process_alive(int(pid), tags.get(PID_START_TAG, "")):
            continue
        reason = (
            f"killed: its process (pid {pid} on {host}) ended without ending the run (kill -9, OOM, power loss); "
            "marked KILLED by the next run"
        )
        stale.extend(_kill_run(client, experiment_id, run.info.run_id, reason))
    return stale


def _kill_run(client: MlflowClient, experiment_id: str, run_id: str, reason: str) -> list[str]:
    children = client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{run_id}' and attributes.status = 'RUNNING'"
    )
    ended = [i for child in children for i in _kill_run(client, experiment_id, child.info.run_id, reason)]
    client.set_tag(run_id, "failure", reason)
    client.set_terminated(run_id, "KILLED")
    return [*ended, run_id]


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def relative_to_root(value: Any, root: Path | None) -> Any:
    """An absolute path under ``root`` as a path relative to it (``data/face-mask``); anything else unchanged.
    A run's record then says the same on every machine and leaks no home directory or user name."""
    if root is None or not isinstance(value, str) or not os.path.isabs(value):
        return value
    try:
        return Path(value).relative_to(root).as_posix() or "."
    except ValueError:
        return value


def without_root(text: str, root: Path | None) -> str:
    """``text`` (a message, a report's JSON) with every path under ``root`` written relative to it: what a run
    records (tags, artifacts, outputs) then holds no machine's directory."""
    return text if root is None else text.replace(f"{Path(root).resolve()}{os.sep}", "")


def log_params(params: Mapping[str, Any], root: Path | None = None) -> None:
    """Log ``params`` flattened (``train.lr``); paths under ``root`` logged relative to it."""
    mlflow.log_params({k: str(relative_to_root(v, root))[:6000] for k, v in flatten(params).items()})


def log_figures(figures: Mapping[str, Any], directory: str = "plots") -> None:
    import matplotlib.pyplot as plt

    for name, fig in figures.items():
        mlflow.log_figure(fig, f"{directory}/{name}.png")
        plt.close(fig)


def log_table(table: pd.DataFrame, path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / Path(path).name
        table.to_csv(file, index=False)
        mlflow.log_artifact(str(file), str(Path(path).parent) if Path(path).parent != Path(".") else None)


def log_bytes(data: bytes, path: str) -> None:
    """A file's bytes as an artifact at ``path`` (e.g. ``files/solo.mid``)."""
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / Path(path).name
        file.write_bytes(data)
        mlflow.log_artifact(str(file), str(Path(path).parent) if Path(path).parent != Path(".") else None)


def log_children(children) -> None:
    """Each ChildRun as a nested run of the active run: params, final metrics, per-step history, figures."""
    parent = mlflow.active_run()
    for child in children:
        # The parent's experiment, named: without it MLflow files the child under the active (default) experiment.
        with mlflow.start_run(
            run_name=child.name, nested=True, experiment_id=parent.info.experiment_id if parent else None
        ):
            log_params(child.params)
            if child.metrics:
                mlflow.log_metrics({k: float(v) for k, v in child.metrics.items()})
            if child.history is not None:
                history = child.history if "step" in child.history else child.history.rename_axis("step").reset_index()
                for row in history.to_dict("records"):
                    step = int(row.pop("step"))
                    mlflow.log_metrics({k: float(v) for k, v in row.items() if v == v}, step=step)  # v == v: not NaN
            log_figures(child.figures)


def pinned(requirements: list[str]) -> list[str]:
    """Each requirement without a version, pinned to the version installed here (a local build label such as
    torch's ``+cu128`` dropped: the index serves the plain version), so `mlflow models serve` builds the
    environment the model was trained in. Requirements already pinned, or not installed, stay as given."""
    from importlib.metadata import PackageNotFoundError, version

    from components.serving.predictor import distribution_name

    out, seen = [], set()
    for requirement in requirements:
        if distribution_name(requirement) in seen:
            continue
        seen.add(distribution_name(requirement))
        if any(op in requirement for op in "=<>~!@ ;"):
            out.append(requirement)
            continue
        try:
            out.append(f"{requirement}=={version(requirement).split('+', 1)[0]}")
        except PackageNotFoundError:
            out.append(requirement)
    return out


def register(
    name: str,
    python_model: str,
    artifacts: dict[str, str],
    code_paths: list[str],
    input_example,
    signature,
    tags: Mapping[str, str],
    extra_requirements: list[str] = (),
    published: Mapping[str, str] | None = None,
):
    """Log the pyfunc model (``python_model`` is a models-from-code file) to the active run, register a new
    version and give it alias ``challenger``. The version is tagged with the sha256 of ``artifacts["predictor"]``
    (``predictor.sha256``), which ``registry.load_model`` checks before it unpickles the file.

    ``published`` names, per artifact, the path its file will have once the run's outputs are published: the
    MLmodel's ``uri`` records that instead of the run's staging directory, which is gone by then."""
    tags = {**tags, PREDICTOR_SHA256: hashlib.sha256(Path(artifacts["predictor"]).read_bytes()).hexdigest()}
    # Paths under the working directory (the project root, for `dvc repro` and `make run`) relative to it: MLflow
    # copies the files from there and its MLmodel records the paths as given, so no machine's directory is kept.
    cwd = Path.cwd()
    python_model = relative_to_root(python_model, cwd)
    artifacts = {k: relative_to_root(v, cwd) for k, v in artifacts.items()}
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts=artifacts,
        code_paths=code_paths,
        signature=signature,
        input_example=input_example,
        # Explicit requirements: inference would import and scan the environment for each run.
        pip_requirements=pinned(["torch", "torchvision", "numpy", "pandas", "scikit-learn", *extra_requirements]),
    )
    if published:
        record_artifact_sources(info, {k: relative_to_root(v, cwd) for k, v in published.items()})
    version = mlflow.register_model(info.model_uri, name, tags=dict(tags))
    MlflowClient().set_registered_model_alias(name, CHALLENGER, version.version)
    return version


def record_artifact_sources(info, sources: Mapping[str, str]) -> None:
    """Rewrite the logged model's MLmodel so each artifact's ``uri`` is ``sources[name]``. MLflow records the
    path it copied from and offers no way to name another, so the MLmodel is uploaded again (before the version
    is registered); the copied files themselves are untouched."""
    from mlflow.models import Model

    model = Model.load(info.model_uri)
    for name, source in sources.items():
        model.flavors["python_function"]["artifacts"][name]["uri"] = source
    with tempfile.TemporaryDirectory() as scratch:
        model.save(os.path.join(scratch, "MLmodel"))
        MlflowClient().log_model_artifact(info.model_id, os.path.join(scratch, "MLmodel"))


# What DVC and the pipeline themselves rewrite (dvc.lock, outputs/): a change there is a result, not a change of
# the source the model came from, so it does not make a run "dirty".
NOT_SOURCE = (":(exclude)dvc.lock", ":(exclude)outputs")


def git_commit(root: Path) -> tuple[str, bool]:
    """HEAD's commit and whether tracked source differs from it ('unknown' outside git)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_SOURCE],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        return sha, dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False


def directory_md5(path: Path) -> str:
    """Content hash of a directory (relative paths and bytes), so a run records exactly what it read."""
    digest = hashlib.md5()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(os.fsencode(file.relative_to(path)))  # the name's bytes: any name hashes, UTF-8 or not
        digest.update(hashlib.md5(file.read_bytes()).digest())
    return digest.hexdigest()


def dvc_data_md5(root: Path) -> str:
    """The hash that data.dvc records for data/ (what `dvc checkout` would restore)."""
    file = root / "data.dvc"
    if not file.exists():
        return "untracked"
    import yaml

    outs = (yaml.safe_load(file.read_text()) or {}).get("outs") or [{}]
    return str(outs[0].get("md5", "unknown"))


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
