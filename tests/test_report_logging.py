"""Every stage's Report is logged by one function, to the same places: the MLflow run and the run's outputs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from components.evaluation.report import ChildRun, Report
from components.tracking import runs as tracking
from components.tracking.report import log_report

pytestmark = pytest.mark.integration


def a_report() -> Report:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return Report(
        metrics={"accuracy": 0.75},
        figures={"curve": fig},
        tables={"roc": pd.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]})},
        children=[ChildRun("arm-a", {"lr": 0.1}, {"accuracy": 0.5})],
        files={"solo.mid": b"MThd"},
    )


def artifacts(client: MlflowClient, run_id: str, folder: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, folder)}


def test_a_report_lands_in_the_run_and_the_output_directory(tmp_path):
    tracking.configure(tmp_path)
    report = a_report()
    figure = report.figures["curve"]
    outputs = tmp_path / "staging"
    with mlflow.start_run() as run:
        log_report(report, outputs, metric_prefix="test_")
    client = MlflowClient()
    logged = client.get_run(run.info.run_id)
    assert logged.data.metrics == {"test_accuracy": 0.75}
    assert artifacts(client, run.info.run_id, "tables") == {"tables/roc.csv"}
    assert artifacts(client, run.info.run_id, "plots") == {"plots/curve.png"}
    assert artifacts(client, run.info.run_id, "files") == {"files/solo.mid"}
    [child] = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert child.info.run_name == "arm-a" and child.data.metrics == {"accuracy": 0.5}
    assert pd.read_csv(outputs / "plots" / "roc.csv").columns.tolist() == ["fpr", "tpr"]
    assert (outputs / "plots" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (outputs / "files" / "solo.mid").read_bytes() == b"MThd"
    assert not plt.fignum_exists(figure.number)  # logged once, then closed


def test_a_named_artifact_folder_holds_tables_and_figures_and_no_directory_writes_nothing_else(tmp_path):
    tracking.configure(tmp_path)
    before = set(tmp_path.iterdir())
    with mlflow.start_run() as run:
        log_report(Report({}, a_report().figures, a_report().tables), artifact_dir="sweep")
    client = MlflowClient()
    assert artifacts(client, run.info.run_id, "sweep") == {"sweep/roc.csv", "sweep/curve.png"}
    assert client.get_run(run.info.run_id).data.metrics == {}
    assert set(tmp_path.iterdir()) == before
