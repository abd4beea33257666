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
