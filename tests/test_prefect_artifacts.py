"""Each flow run files its results in Prefect's UI: test metrics with the MLflow run's link, or the promotion
decision. The markdown is checked here; tests/test_face_mask_flow.py and tests/test_promotion.py read the
artifacts back from a real Prefect server."""

from __future__ import annotations

import pytest

from flows.artifacts import mlflow_run_link, pipeline_markdown, promotion_markdown

pytestmark = pytest.mark.unit


def test_the_results_table_puts_the_primary_metric_first_and_links_the_mlflow_run():
    link = mlflow_run_link("sqlite:////x/mlruns/mlflow.db", "3", "abc")
    text = pipeline_markdown(
        "face-mask", {"accuracy": 0.9375, "f1": 0.88372, "roc_auc": 0.99}, "f1", link, "7", {"git.commit": "1a2b"}
    )
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "metric" not in line]
    assert rows[0] == "| **f1** | 0.8837 |" and rows[1:] == ["| accuracy | 0.9375 |", "| roc_auc | 0.99 |"]
    assert "version 7 (alias `challenger`)" in text
    assert "[MLflow run](http://127.0.0.1:5000/#/experiments/3/runs/abc)" in text and "git.commit `1a2b`" in text


def test_a_tracking_server_run_links_to_that_server():
    assert (
        mlflow_run_link("http://mlflow.internal:5000/", "1", "r")
        == "http://mlflow.internal:5000/#/experiments/1/runs/r"
    )


def test_a_refused_promotion_shows_both_scores_and_why():
    text = promotion_markdown(
        {
            "model": "face-mask",
            "outcome": "refused",
            "metric": "f1",
            "candidate": "8",
            "candidate_score": 0.81,
            "champion": "7",
            "champion_score": 0.88,
            "reason": "f1 0.81 is not better than the champion's 0.88",
        }
    )
    assert text.startswith("# face-mask: promotion refused")
    assert "| candidate | 8 | 0.81 |" in text and "| champion before | 7 | 0.88 |" in text
    assert "not better than the champion's" in text
