"""MLflow tracking and registry with embedded defaults.

Default store: ``sqlite:///<root>/mlruns/mlflow.db`` with artifacts under ``<root>/mlruns/artifacts``; set
``MLFLOW_TRACKING_URI`` to use a tracking server instead. Nothing here runs at import time.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
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


@contextmanager
def parent_run(
    experiment: str, root: Path, run_name: str, tags: Mapping[str, str], parent_run_id: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """One MLflow run per flow run; it ends FAILED (with the error as a tag) if the body raises. With
    ``parent_run_id`` it is that run's child (a sweep's configuration), whichever thread it runs in."""
    experiment_id = ensure_experiment(experiment, root)
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        tags=dict(tags),
        nested=parent_run_id is not None,
        parent_run_id=parent_run_id,
    ) as run:
        try:
            yield run
        except BaseException as exc:
            mlflow.set_tag("failure", f"{type(exc).__name__}: {exc}"[:4900])
            raise


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def log_params(params: Mapping[str, Any]) -> None:
    mlflow.log_params({k: str(v)[:6000] for k, v in flatten(params).items()})


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


def register(
    name: str,
    python_model: str,
    artifacts: dict[str, str],
    code_paths: list[str],
    input_example,
    signature,
    tags: Mapping[str, str],
    extra_requirements: list[str] = (),
):
    """Log the pyfunc model (``python_model`` is a models-from-code file) to the active run, register a new
    version and give it alias ``challenger``. The version is tagged with the sha256 of ``artifacts["predictor"]``
    (``predictor.sha256``), which ``registry.load_model`` checks before it unpickles the file."""
    tags = {**tags, PREDICTOR_SHA256: hashlib.sha256(Path(artifacts["predictor"]).read_bytes()).hexdigest()}
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts=artifacts,
        code_paths=code_paths,
        signature=signature,
        input_example=input_example,
        # Explicit requirements: inference would import and scan the environment for each run.
        pip_requirements=["torch", "torchvision", "numpy", "pandas", "scikit-learn", *extra_requirements],
    )
    version = mlflow.register_model(info.model_uri, name, tags=dict(tags))
    MlflowClient().set_registered_model_alias(name, CHALLENGER, version.version)
    return version


def git_commit(root: Path) -> tuple[str, bool]:
    """HEAD's commit and whether the tree has uncommitted changes ('unknown' outside git)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
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
        digest.update(str(file.relative_to(path)).encode())
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
