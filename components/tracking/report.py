"""One report, logged one way: what a stage hands back (components.evaluation.report.Report) goes into the
active MLflow run and, when given, the run's output directory, so every stage's metrics, tables, figures, child
runs and files land in the same places under the same names."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import mlflow

from components.evaluation.report import Report
from components.tracking.runs import log_bytes, log_children, log_table


def log_report(
    report: Report, directory: Path | None = None, *, metric_prefix: str = "", artifact_dir: str | None = None
) -> None:
    """Log ``report`` into the active run and, with ``directory`` (a run's staging output), write it there.

    MLflow: metrics as ``<metric_prefix><name>``, a nested run per child, tables as ``tables/<name>.csv``,
    figures as ``plots/<name>.png`` and files as ``files/<name>`` (``artifact_dir`` puts tables and figures in
    one folder of that name instead). ``directory``: tables and figures under ``plots/`` (what `dvc plots`
    reads), files under ``files/``. Figures are closed afterwards: a report is logged once.
    """
    if report.metrics:
        mlflow.log_metrics({f"{metric_prefix}{k}": float(v) for k, v in report.metrics.items()})
    log_children(report.children)
    for name, table in report.tables.items():
        log_table(table, f"{artifact_dir or 'tables'}/{name}.csv")
        if directory is not None:
            table.to_csv(_made(directory / "plots") / f"{name}.csv", index=False)
    for name, data in report.files.items():
        log_bytes(data, f"files/{name}")
        if directory is not None:
            (_made(directory / "files") / name).write_bytes(data)
    for name, fig in report.figures.items():
        mlflow.log_figure(fig, f"{artifact_dir or 'plots'}/{name}.png")
        if directory is not None:
            fig.savefig(_made(directory / "plots") / f"{name}.png", dpi=100)
        plt.close(fig)


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
