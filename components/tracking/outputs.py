"""The files a pipeline run leaves for DVC: metrics.json, metrics_all.json, plots/, model/, validation.json.

``metrics.json`` holds the headline figures only (the primary test metric, the test split's size, training's
wall seconds), so `dvc metrics show` stays a table one can read across 25 projects and git can keep it;
``metrics_all.json`` holds every test metric and training number (a cached DVC output, like the model).

A run writes into a hidden staging directory of its own (``.<project>.partial-<pid>-<random>``) and moves it
into place only when it succeeds, so DVC and users never mistake a half-written result for a valid one. A
failed or interrupted run deletes only its own staging directory: the last good ``<project>/`` stays until a
successful run replaces it (old one renamed aside, new one renamed in, old one deleted; a crash between the
two renames is repaired by the next run, which puts the old one back).

One run of a project at a time per outputs directory: ``begin()`` takes ``.locks/<project>.lock`` (an flock the
kernel drops when the process dies) and a second run fails at once with "project P is already running (pid N,
since T)"; ``publish()`` and ``discard()`` release it.

Training's resume state is the exception: it lives in ``.checkpoints/<project>/<fingerprint>/``, which a new
run does not wipe, so a run killed mid-training (even by SIGKILL) continues from its last epoch when started
again. The fingerprint covers the settings and the data, so a changed config or dataset starts afresh
instead of resuming a stale run; the checkpoints go once a run's outputs are published.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from components.errors import NotWritableError
from components.locks import project_run_lock
from components.tracking.runs import write_json

REGISTRATION = "registered.json"
HEADLINE, ALL_METRICS = "metrics.json", "metrics_all.json"
# How the projects name their test split's size among training's numbers (the first one present counts).
TEST_SIZE_KEYS = ("train.test", "train.test_size", "train.test_clips", "train.test_pieces", "train.test_subjects")


def test_size_key(metrics: dict[str, Any]) -> str | None:
    return next((key for key in TEST_SIZE_KEYS if key in metrics), None)


def headline_metrics(metrics: dict[str, Any], primary_metric: str) -> dict[str, Any]:
    """The figures of a run's README row: the primary test metric, the test split's size and
    ``train.seconds``, where the run has them."""
    keys = [primary_metric, test_size_key(metrics), "train.seconds"]
    return {key: metrics[key] for key in keys if key is not None and key in metrics}


_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)  # a read-only directory, or a read-only mount


def _not_writable(root: Path, exc: OSError) -> NotWritableError:
    return NotWritableError(
        f"{root}: cannot write the run's outputs there ({exc.strerror}: {exc.filename}); make it writable"
    )


class RunOutputs:
    def __init__(self, outputs_root: Path, project: str):
        self.root, self.project = outputs_root, project
        self.final = outputs_root / project
        run = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.staging = outputs_root / f".{project}.partial-{run}"
        self._aside = outputs_root / f".{project}.old-{run}"  # the previous outputs while publish swaps them
        self.checkpoints = outputs_root / ".checkpoints" / project
        self.lock = project_run_lock(outputs_root, project)

    @property
    def model_dir(self) -> Path:
        return self.staging / "model"

    def published_path(self, staged: Path) -> Path:
        """Where a file written under the staging directory will be once ``publish()`` has moved it in."""
        return self.final / staged.relative_to(self.staging)

    def checkpoint_dir(self, settings: dict[str, Any], data_md5: str) -> Path:
        """Training's own directory for these settings and data (created): a rerun of the same finds its last.pt."""
        path = self.checkpoints / training_fingerprint(settings, data_md5)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def keep_model_files(self, checkpoint_dir: Path) -> None:
        """Copy what training wrote (best.pt, a project's own weight files) into the model output, all but the
        resume state: last.pt would only fill the DVC cache."""
        if checkpoint_dir.is_dir():
            shutil.copytree(
                checkpoint_dir,
                self.model_dir,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("last.pt", "last.pt.tmp"),
            )

    def begin(self) -> RunOutputs:
        """Take the project's run lock (BusyError if another run holds it), tidy what a dead run left, stage."""
        try:
            self.lock.acquire()
        except OSError as exc:
            if exc.errno not in _NOT_WRITABLE:
                raise
            raise _not_writable(self.root, exc) from None
        try:
            self._recover()
            (self.staging / "plots").mkdir(parents=True)
            self.model_dir.mkdir()
        except OSError as exc:
            self.lock.release()
            if exc.errno not in _NOT_WRITABLE:
                raise
            raise _not_writable(self.root, exc) from None
        except BaseException:
            self.lock.release()
            raise
        return self

    def _recover(self) -> None:
        """With the lock held, every other staging or set-aside directory of this project is a dead run's:
        put back outputs that a crash mid-publish left aside, delete the rest."""
        aside = sorted(self.root.glob(f".{self.project}.old-*"), key=lambda p: p.stat().st_mtime)
        if aside and not self.final.exists():
            aside.pop().rename(self.final)
        for path in [*aside, *self.root.glob(f".{self.project}.partial*")]:
            shutil.rmtree(path, ignore_errors=True)

    def write(
        self, metrics: dict[str, float], info: dict[str, Any], validation: dict[str, Any], primary_metric: str
    ) -> None:
        """metrics_all.json (the test metrics, then training's numbers as ``train.*``), metrics.json (its
        headline figures: ``headline_metrics``) and validation.json; the stages' tables, figures and files
        come through ``components.tracking.report.log_report``."""
        # Flat numbers only, so `dvc metrics diff` and `dvc exp show` compare every value; the training info's
        # strings (architecture, device) are MLflow params already.
        numbers = {
            f"train.{k}": int(v) if isinstance(v, bool) else v
            for k, v in info.items()
            if isinstance(v, (int, float)) and math.isfinite(v)
        }
        every = {**metrics, **numbers}
        write_json(self.staging / ALL_METRICS, every)
        write_json(self.staging / HEADLINE, headline_metrics(every, primary_metric))
        write_json(self.staging / "validation.json", validation)

    def record_registration(self, model: str, version: str, run_id: str) -> None:
        """``model/registered.json``: the registered version these outputs belong to. It is inside the stage's
        DVC output, so when DVC restores outputs from its run cache the record comes back with them and
        `dlfolio sync` can point `challenger` at the version they really hold."""
        write_json(self.model_dir / REGISTRATION, {"model": model, "version": str(version), "run_id": run_id})

    def publish(self) -> Path:
        """Replace the project's outputs by this run's: the old ones go aside, the new ones in, the old deleted."""
        try:
            if self.final.exists():
                self.final.rename(self._aside)
            try:
                self.staging.rename(self.final)
            except BaseException:
                if self._aside.exists() and not self.final.exists():
                    self._aside.rename(self.final)
                raise
            shutil.rmtree(self._aside, ignore_errors=True)
            shutil.rmtree(self.checkpoints, ignore_errors=True)
        finally:
            self.lock.release()
        return self.final

    def discard(self) -> None:
        """A failed run: delete its own staging directory only; the last good outputs stay."""
        try:
            shutil.rmtree(self.staging, ignore_errors=True)
            plt.close("all")
        finally:
            self.lock.release()


def training_fingerprint(settings: dict[str, Any], data_md5: str) -> str:
    """A short hash of what a training run depends on: the project's settings (as JSON) and its data."""
    text = json.dumps(settings, sort_keys=True, default=str) + data_md5
    return hashlib.sha256(text.encode()).hexdigest()[:16]
