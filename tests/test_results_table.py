"""`dlfolio results` writes the README's table from what a run left in outputs/*/metrics.json, so the README
says what a fresh clone's `make run` gives."""

from __future__ import annotations

import json

import pytest

from flows.commands.results import END, START

pytestmark = pytest.mark.unit


def outputs(root, project: str, metrics: dict) -> None:
    (root / "outputs" / project).mkdir(parents=True)
    (root / "outputs" / project / "metrics.json").write_text(json.dumps(metrics))


def test_the_table_holds_each_projects_primary_metric_test_size_and_training_time(tmp_path, run_cli):
    outputs(tmp_path, "face-mask", {"f1": 0.91234, "accuracy": 0.9, "train.test": 80, "train.seconds": 42.4})
    outputs(tmp_path, "linear-regression", {"rmse": 1.1356, "train.seconds": 0.3})
    code, out, _ = run_cli("results", "--root", str(tmp_path))
    assert code == 0
    assert "| `face-mask` | f1 (higher is better) | 0.9123 | 80 | 42 |" in out
    assert "| `linear-regression` | rmse (lower is better) | 1.136 | - | 0 |" in out
    assert "| `yolo-cars` | - | not run | - | - |" in out


def test_write_replaces_only_the_block_between_the_markers(tmp_path, run_cli):
    outputs(tmp_path, "face-mask", {"f1": 0.5})
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{START}\nold table\n{END}\nafter\n")
    code, out, _ = run_cli("results", "--root", str(tmp_path), "--write", str(readme))
    assert code == 0 and "wrote the results table" in out
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n" + START + "\n| project |") and text.endswith(END + "\nafter\n")
    assert "old table" not in text and "| `face-mask` | f1 (higher is better) | 0.5 |" in text


def test_a_file_without_the_markers_is_refused(tmp_path, run_cli):
    (tmp_path / "README.md").write_text("no markers\n")
    code, _, err = run_cli("results", "--root", str(tmp_path), "--write", str(tmp_path / "README.md"))
    assert code == 2 and "no <!-- results:start -->" in err
    assert (tmp_path / "README.md").read_text() == "no markers\n"


def test_a_run_keeps_its_headline_figures_in_metrics_json_and_every_figure_in_metrics_all_json(tmp_path):
    """`dvc metrics show` reads metrics.json: three columns a project (the README row), not every test metric
    and training count (182 columns across the 25 projects before)."""
    from components.tracking.outputs import RunOutputs

    run = RunOutputs(tmp_path, "demo").begin()
    test = {"f1": 0.91, "accuracy": 0.9, "roc_auc": 0.99, "log_loss": 0.2}
    info = {"best_epoch": 7, "stopped_early": True, "test": 80, "train": 300, "seconds": 4.2, "device": "cpu"}
    run.write(test, info, {}, "f1")
    run.publish()
    headline = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    every = json.loads((tmp_path / "demo" / "metrics_all.json").read_text())
    assert headline == {"f1": 0.91, "train.test": 80, "train.seconds": 4.2}
    assert every == {
        **test,
        "train.best_epoch": 7,
        "train.stopped_early": 1,
        "train.test": 80,
        "train.train": 300,
        "train.seconds": 4.2,
    }  # flat numbers only: the device is an MLflow param
