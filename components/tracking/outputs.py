"""The files a pipeline run leaves for DVC: metrics.json, plots/, model/, validation.json.

A run writes into a hidden staging directory and moves it into place only when it succeeds; a failed run
leaves no output at all, so DVC and users never mistake a half-written or stale result for a valid one.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from components.evaluation.report import Evaluation
from components.tracking.runs import write_json


class RunOutputs:
    def __init__(self, outputs_root: Path, project: str):
        self.final = outputs_root / project
        self.staging = outputs_root / f".{project}.partial"

    @property
    def model_dir(self) -> Path:
        return self.staging / "model"

    def begin(self) -> RunOutputs:
        for path in (self.final, self.staging):
            shutil.rmtree(path, ignore_errors=True)
        (self.staging / "plots").mkdir(parents=True)
        self.model_dir.mkdir()
        return self

    def write(self, evaluation: Evaluation, info: dict[str, Any], validation: dict[str, Any]) -> None:
        # Flat numbers only, so `dvc metrics diff` and `dvc exp show` compare every value; the training info's
        # strings (architecture, device) are MLflow params already.
        numbers = {f"train.{k}": int(v) if isinstance(v, bool) else v for k, v in info.items()
                   if isinstance(v, (int, float)) and math.isfinite(v)}
        write_json(self.staging / "metrics.json", {**evaluation.metrics, **numbers})
        write_json(self.staging / "validation.json", validation)
        for name, table in evaluation.tables.items():
            table.to_csv(self.staging / "plots" / f"{name}.csv", index=False)
        for name, fig in evaluation.figures.items():
            fig.savefig(self.staging / "plots" / f"{name}.png", dpi=100)
        if evaluation.files:
            (self.staging / "files").mkdir(exist_ok=True)
        for name, data in evaluation.files.items():
            (self.staging / "files" / name).write_bytes(data)

    def publish(self) -> Path:
        self.staging.replace(self.final)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        plt.close("all")
