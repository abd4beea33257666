"""`dlfolio sweep`: a grid of overrides to a project's params.yaml section, every configuration checked against
the project's settings before anything runs, run as MLflow child runs of one sweep run on real Prefect and
MLflow, compared, and the best configuration written back into params.yaml with its comments kept."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from components.projects import settings_schemas
from components.settings import SettingsError
from components.tracking import sweep

PARAMS = """\
# a sweep test's parameters: the comments must survive --write-best
defaults:
  seed: 0
  device: cpu

projects:
  linear-regression:
    data_dir: {data_dir}
    data: {{file: temperatures.csv, min_rows: 20}}   # the real CSV layout
    split: {{test: 0.2}}
    train: {{lr: 0.02, epochs: 80, standardize: true, log_every: 20}}  # shrunk for the test
"""


@pytest.fixture
def params_file(tmp_path, sample_data):
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS.format(data_dir=sample_data("linear-regression")))
    return path


# --- the grid and its checks -------------------------------------------------------------------------------


@pytest.mark.unit
def test_set_values_are_yaml_and_several_sets_multiply_into_the_grid():
    assert sweep.parse_set("train.lr=1e-6,0.01,0.1") == ("train.lr", [1e-6, 0.01, 0.1])  # 1e-6 is a number
    assert sweep.parse_set("model.hidden=[64, 32],[128]") == ("model.hidden", [[64, 32], [128]])
    assert sweep.parse_set("train.optimizer=adam,sgd") == ("train.optimizer", ["adam", "sgd"])
    assert sweep.parse_set("train.grad_clip=null,1.0")[1] == [None, 1.0]
    grid = sweep.parse_sets(["train.lr=0.001,0.01,0.1", "train.batch_size=16,32"])
    configs = sweep.expand_grid(grid)
    assert len(configs) == 6
    assert configs[:3] == [
        {"train.lr": 0.001, "train.batch_size": 16},
        {"train.lr": 0.001, "train.batch_size": 32},
        {"train.lr": 0.01, "train.batch_size": 16},
    ]
    with pytest.raises(SettingsError, match="given twice"):
        sweep.parse_sets(["train.lr=0.1", "train.lr=0.2"])
    with pytest.raises(SettingsError, match="KEY=VALUE"):
        sweep.parse_set("train.lr")


@pytest.mark.unit
@pytest.mark.parametrize(
    "setting, message",
    [
        (
            "train.lrr=0.1",
            "projects.linear-regression.train.lrr: unknown key (known keys here: epochs, log_every, lr, standardize)",
        ),
        ("trian.lr=0.1", "projects.linear-regression.trian: unknown key"),
        ("train.lr=fast", "projects.linear-regression.train.lr: expected float, got 'fast'"),
        ("train.epochs=1.5", "projects.linear-regression.train.epochs: expected int, got 1.5"),
        ("train.lr.x=1", "projects.linear-regression.train.lr: is a value (0.02), not a section"),
    ],
)
def test_a_bad_override_is_reported_with_its_yaml_path_before_anything_runs(params_file, setting, message):
    configs = sweep.expand_grid(
        sweep.parse_sets([setting, "train.epochs=10,20"] if "epochs" not in setting else [setting])
    )
    with pytest.raises(SettingsError) as error:
        sweep.validate_configs(params_file, "linear-regression", configs, settings_schemas())
    assert message in str(error.value)


@pytest.mark.unit
def test_the_cli_refuses_a_bad_grid_without_starting_a_run(params_file, run_cli):
    code, out, err = run_cli(
        "sweep", "linear-regression", "--set", "train.lr=0.1,oops", "--root", str(params_file.parent)
    )
    assert code == 2 and "projects.linear-regression.train.lr: expected float, got 'oops'" in err
    assert not (params_file.parent / "mlruns").exists() and not (params_file.parent / "outputs").exists()


@pytest.mark.unit
def test_failed_and_diverged_runs_are_rows_of_the_table_and_never_the_best():
    configs = [{"train.lr": 10.0}, {"train.lr": 0.1}, {"train.lr": 1.0}, {"train.lr": 0.01}]
    results = [
        {"overrides": configs[0], "status": "ok", "metrics": {"rmse": math.nan}},
        {"overrides": configs[1], "status": "ok", "metrics": {"rmse": 2.0, "r2": 0.9}},
        {"overrides": configs[2], "status": "failed", "error": "FloatingPointError: overflow"},
        {"overrides": configs[3], "status": "ok", "metrics": {"rmse": 5.0, "r2": 0.5}},
    ]
    table = sweep.comparison_table(results, "rmse")
    assert list(table["status"]) == ["failed", "ok", "failed", "ok"]
    assert "diverged" in table.loc[0, "error"] and table.loc[2, "error"] == "FloatingPointError: overflow"
    assert sweep.best_row(table, "rmse", higher_is_better=False) == 1
    assert sweep.best_row(table, "r2", higher_is_better=True) == 1
    assert sweep.best_row(table.assign(status="failed"), "rmse", False) is None
    fig = sweep.comparison_figure(configs, table, "rmse", False)
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_xlabel() == "train.lr"
    assert sweep.metric_goal("val_loss", "accuracy", True) is False and sweep.metric_goal("f1", "accuracy", True)


@pytest.mark.unit
def test_write_best_changes_only_the_swept_values_and_keeps_comments(params_file):
    before = params_file.read_text()
    sweep.write_best(params_file, "linear-regression", {"train.lr": 0.3, "split.test": 0.25, "seed": 4})
    after = params_file.read_text()
    removed = sorted(set(before.splitlines()) - set(after.splitlines()))
    added = sorted(set(after.splitlines()) - set(before.splitlines()))
    assert removed == [
        "    split: {test: 0.2}",
        "    train: {lr: 0.02, epochs: 80, standardize: true, log_every: 20}  # shrunk for the test",
    ]
    assert added == [
        "    seed: 4",  # a key the section did not have: added to it, not to defaults
        "    split: {test: 0.25}",
        "    train: {lr: 0.3, epochs: 80, standardize: true, log_every: 20}  # shrunk for the test",
    ]
    section = yaml.safe_load(after)["projects"]["linear-regression"]
    assert section["train"]["lr"] == 0.3 and section["split"]["test"] == 0.25 and section["seed"] == 4
    assert yaml.safe_load(after)["defaults"]["seed"] == 0


# --- a real sweep -------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_parallel_sweep_scores_each_configuration_exactly_as_a_serial_one(
    prefect_server, tmp_path, sample_data, monkeypatch
):
    """Today's threads share torch's one generator (initial weights, dropout, augmentation): the same
    configuration scored F1 0.837 in parallel and 0.811 alone. In processes of their own they score the same."""
    from flows.sweep import run_sweep
    from tests.conftest import REPO

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = {**params["projects"]["face-mask"], "data_dir": str(sample_data("face-mask"))}
    for optional in ("schedule", "conformal", "active_learning"):  # the sweep compares trained models only
        section.pop(optional, None)
    section["train"] = {**section["train"], "epochs": 2}
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params.get("defaults", {}), "projects": {"face-mask": section}})
    )
    grid = {"train.lr": [0.01, 0.02]}

    from components.settings import FanoutSettings

    def scores(workers: int) -> list[dict]:  # 0: one by one in this process; 2: two Dask worker processes
        result = run_sweep("face-mask", grid, fanout=FanoutSettings(workers=workers), root=str(tmp_path))
        assert [row["status"] for row in result["table"]] == ["ok", "ok"]
        return [{k: v for k, v in row.items() if k not in ("run_id", "error")} for row in result["table"]]

    # One thread everywhere: a float sum over 1 thread and over 2 differs in its last bits, and a test worker's
    # torch may have been left at another count than the fresh processes get; the generators are what is tested.
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the configurations' processes read it when torch starts
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial, parallel = scores(0), scores(2)
    finally:
        torch.set_num_threads(threads)
    assert {"f1", "accuracy", "log_loss"} <= set(serial[0]) and serial[0]["f1"] != serial[1]["f1"]
    assert parallel == serial  # exactly: every metric of every configuration


# Last: a flow under capsys (the CLI) leaves Prefect's console handler on a closed stream for the next test.
@pytest.mark.integration
def test_a_real_sweep_runs_children_under_one_parent_picks_the_best_and_writes_it_back(
    prefect_server, params_file, run_cli
):
    client = MlflowClient()
    versions_before = len(client.search_model_versions("name='linear-regression'"))
    root = params_file.parent
    # lr=1e-6 barely moves the neuron in 80 epochs; 0.3 fits F = 1.8 C + 32. missing.csv raises in validation.
    code, out, err = run_cli(
        "sweep",
        "linear-regression",
        "--set",
        "train.lr=1e-6,0.3",
        "--set",
        "data.file=temperatures.csv,missing.csv",
        "--write-best",
        "--root",
        str(root),
    )
    assert code == 0, err
    assert "best (rmse=" in out and "train.lr=0.3 data.file=temperatures.csv" in out

    parent = client.search_runs(
        [client.get_experiment_by_name("linear-regression").experiment_id],
        "tags.sweep = 'parent'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sweep.grid.train.lr"] == "1.0e-06,0.3" and parent.data.params["sweep.metric"] == "rmse"
    assert parent.data.params["best.train.lr"] == "0.3"
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 4
    by_name = {c.data.tags["mlflow.runName"]: c for c in children}
    good, slow = (
        by_name["train.lr=0.3 data.file=temperatures.csv"],
        by_name["train.lr=1.0e-06 data.file=temperatures.csv"],
    )
    assert good.info.status == slow.info.status == "FINISHED"
    assert good.data.params["train.lr"] == "0.3" and slow.data.params["train.lr"] == "1e-06"
    assert good.data.metrics["test_rmse"] < 2.0 < 20.0 < slow.data.metrics["test_rmse"]
    failed = [c for c in children if c.data.params["data.file"] == "missing.csv"]
    assert len(failed) == 2 and all(c.info.status == "FAILED" for c in failed)
    assert parent.data.tags["sweep.best_run_id"] == good.info.run_id
    assert parent.data.metrics["best_rmse"] == pytest.approx(good.data.metrics["test_rmse"])

    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert {"sweep/comparison.csv", "sweep/comparison.png", "sweep/best_config.yaml"} <= artifacts
    table = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{parent.info.run_id}/sweep/comparison.csv"))
    assert list(table["status"]) == ["ok", "failed", "ok", "failed"]
    assert table["error"].fillna("").str.contains("missing.csv").sum() == 2

    written = yaml.safe_load(params_file.read_text())["projects"]["linear-regression"]
    assert written["train"]["lr"] == 0.3 and written["data"]["file"] == "temperatures.csv"
    assert "# the real CSV layout" in params_file.read_text()
    # Swept runs never register a model, nor write the DVC outputs of the project.
    assert len(client.search_model_versions("name='linear-regression'")) == versions_before
    assert not (root / "outputs" / "linear-regression").exists()
