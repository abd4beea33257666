"""The files a pipeline run leaves for DVC: metrics.json, plots/, model/, validation.json.

A run writes into a hidden staging directory and moves it into place only when it succeeds; a failed run
leaves no output at all, so DVC and users never mistake a half-written or stale result for a valid one.

Training's resume state is the exception: it lives in ``.checkpoints/<project>/<fingerprint>/``, which a new
run does not wipe, so a run killed mid-training (even by SIGKILL) continues from its last epoch when started
again. The fingerprint covers the settings and the data, so a changed config or dataset starts afresh
instead of resuming a stale run; the checkpoints go once a run's outputs are published.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from components.tracking.runs import write_json


class RunOutputs:
    def __init__(self, outputs_root: Path, project: str):
        self.final = outputs_root / project
        self.staging = outputs_root / f".{project}.partial"
        self.checkpoints = outputs_root / ".checkpoints" / project

    @property
    def model_dir(self) -> Path:
        return self.staging / "model"

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
        for path in (self.final, self.staging):
            shutil.rmtree(path, ignore_errors=True)
        (self.staging / "plots").mkdir(parents=True)
        self.model_dir.mkdir()
        return self

    def write(self, metrics: dict[str, float], info: dict[str, Any], validation: dict[str, Any]) -> None:
        """metrics.json (the test metrics, then training's numbers as ``train.*``) and validation.json; the
        stages' tables, figures and files come through ``components.tracking.report.log_report``."""
        # Flat numbers only, so `dvc metrics diff` and `dvc exp show` compare every value; the training info's
        # strings (architecture, device) are MLflow params already.
        numbers = {
            f"train.{k}": int(v) if isinstance(v, bool) else v
            for k, v in info.items()
            if isinstance(v, (int, float)) and math.isfinite(v)
        }
        write_json(self.staging / "metrics.json", {**metrics, **numbers})
        write_json(self.staging / "validation.json", validation)

    def publish(self) -> Path:
        self.staging.replace(self.final)
        shutil.rmtree(self.checkpoints, ignore_errors=True)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        plt.close("all")


def training_fingerprint(settings: dict[str, Any], data_md5: str) -> str:
    """A short hash of what a training run depends on: the project's settings (as JSON) and its data."""
    text = json.dumps(settings, sort_keys=True, default=str) + data_md5
    return hashlib.sha256(text.encode()).hexdigest()[:16]
