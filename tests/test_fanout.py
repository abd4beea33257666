"""Fan-out on Dask and the Optuna search: a sweep's configurations (and an active-learning stage's strategies)
run as concurrent Prefect tasks on a local Dask cluster of worker processes, each still an MLflow child run;
`dlfolio sweep --search optuna` searches the `--set` space (listed values, LOW..HIGH[:log|:STEP] ranges) with
seeded TPE, a batch of trials per round of workers, and reports and writes back the best trial."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml
from mlflow.tracking import MlflowClient

from components.grid import Range, parse_range, parse_set, parse_space, probe_configs
from components.settings import FanoutSettings, SettingsError
from tests.conftest import REPO

PARAMS = """\
defaults:
  seed: 0
  device: cpu

projects:
  linear-regression:
    data_dir: {data_dir}
    data: {{file: temperatures.csv, min_rows: 20}}
    split: {{test: 0.2}}
    train: {{lr: 0.02, epochs: 80, standardize: true, log_every: 20}}
"""


@pytest.fixture
def params_file(tmp_path, sample_data):
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS.format(data_dir=sample_data("linear-regression")))
    return path


# --- the range syntax ----------------------------------------------------------------------------------------


@pytest.mark.unit
def test_ranges_are_integer_or_float_intervals_with_a_log_or_step_option():
    assert parse_set("train.lr=1e-4..1e-1:log", ranges=True) == ("train.lr", Range(1e-4, 0.1, log=True))
    assert parse_set("train.epochs=10..100", ranges=True) == ("train.epochs", Range(10, 100, integer=True))
    assert parse_range("train.epochs", "10..100:10") == Range(10, 100, step=10, integer=True)
    assert parse_range("train.lr", "0.0..1") == Range(0.0, 1.0)  # one end written as a float: floats
    assert parse_range("train.lr", "1e-4..1e-1:log").text() == "0.0001..0.1:log"
    # listed values stay what they were: categorical choices; a path with .. is no range
    assert parse_set("train.optimizer=adam,sgd", ranges=True) == ("train.optimizer", ["adam", "sgd"])
    assert parse_set("data_dir=../data") == ("data_dir", ["../data"])
    space = parse_space(["train.lr=1e-4..1e-1:log", "train.standardize=true,false"])
    assert probe_configs(space) == [
        {"train.lr": 1e-4, "train.standardize": True},
        {"train.lr": 0.1, "train.standardize": True},
        {"train.lr": 1e-4, "train.standardize": False},
    ]


@pytest.mark.unit
@pytest.mark.parametrize(
    "text, message",
    [
        ("train.lr=1e-1..1e-4", "--set train.lr=1e-1..1e-4: the low end 1e-1 is not below the high end 1e-4"),
        ("train.lr=0..0.1:log", "--set train.lr=0..0.1:log: a log range needs a low end above 0, got 0"),
        ("train.lr=fast..1", "--set train.lr=fast..1: 'fast' is not a number; a range is LOW..HIGH"),
        ("train.lr=1.0..2:lin", "--set train.lr=1.0..2:lin: unknown range option 'lin'; a range is LOW..HIGH"),
        ("train.lr=0.1,1.0..2.0", "--set train.lr=0.1,1.0..2.0: a range is a key's only value"),
        ("train.epochs=1..10:0.5", "--set train.epochs=1..10:0.5: an integer range takes an integer step"),
        ("train.epochs=1..10:20", "--set train.epochs=1..10:20: the step 20 is wider than the range"),
        ("a+b=1..2", "--set a+b: keys joined by + take listed values"),
    ],
)
def test_a_bad_range_is_a_one_line_error_saying_what_is_wrong(text, message):
    with pytest.raises(SettingsError) as caught:
        parse_set(text, ranges=True)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.unit
def test_a_grid_refuses_a_range_and_names_the_optuna_search(params_file, run_cli):
    code, out, err = run_cli(
        "sweep", "linear-regression", "--set", "train.lr=1e-4..1e-1:log", "--root", str(params_file.parent)
    )
    assert code == 2 and "a range needs --search optuna" in err
    code, out, err = run_cli(
        "sweep",
        "linear-regression",
        "--search",
        "optuna",
        "--set",
        "train.epochs=1.5..3.5",
        "--root",
        str(params_file.parent),
    )  # both ends are checked against the settings before a trial runs: epochs is an int
    assert code != 0 and "projects.linear-regression.train.epochs: expected int, got 1.5" in err


@pytest.mark.unit
def test_fanout_settings_come_from_the_command_line_over_the_environment_and_are_checked():
    assert FanoutSettings.resolve(environ={}) == FanoutSettings(workers=2, address=None)
    assert FanoutSettings.resolve(environ={"DLFOLIO_WORKERS": "3"}).workers == 3
    assert FanoutSettings.resolve(1, environ={"DLFOLIO_WORKERS": "3"}).workers == 1
    env = {"DLFOLIO_DASK_ADDRESS": "tcp://10.0.0.5:8786"}
    assert FanoutSettings.resolve(environ=env).address == "tcp://10.0.0.5:8786"
    with pytest.raises(SettingsError, match=r"^--workers=-1: Input should be greater than or equal to 0$"):
        FanoutSettings.resolve(-1, environ={})
    with pytest.raises(SettingsError, match=r"^DLFOLIO_WORKERS=two: .*valid integer"):
        FanoutSettings.resolve(environ={"DLFOLIO_WORKERS": "two"})
    with pytest.raises(SettingsError, match=r"^--address=10.0.0.5: .*\(e.g. tcp://127.0.0.1:8786\)$"):
        FanoutSettings.resolve(address="10.0.0.5", environ={})


@pytest.mark.unit
def test_the_seeded_search_asks_the_same_trials_within_the_space_batch_by_batch():
    """Ask/tell in batches of two with a deterministic objective: the same seed asks the same configurations,
    every one inside the space, and TPE's constant liar keeps a batch's two trials apart."""
    from components.tracking.search import make_study, suggest, tell, within

    space = parse_space(["train.lr=1e-4..1e-1:log", "train.epochs=10..100:10", "model.hidden=[8],[16, 8]"])

    def search(seed: int) -> list[dict]:
        study, asked = make_study(False, seed), []
        for _ in range(6):
            batch = [study.ask() for _ in range(2)]
            configs = [suggest(trial, space) for trial in batch]
            assert configs[0] != configs[1]
            for trial, config in zip(batch, configs):
                tell(study, trial, abs(config["train.lr"] - 0.01) * config["train.epochs"])
            asked += configs
        return asked

    first = search(0)
    assert first == search(0) and first != search(1)
    assert all(within(space, c) for c in first)
    assert {c["train.epochs"] % 10 for c in first} == {0} and {str(c["model.hidden"]) for c in first} <= {
        "[8]",
        "[16, 8]",
    }


@pytest.mark.unit
def test_sweep_help_is_fast_and_imports_neither_dask_nor_optuna():
    probe = (
        "import sys, time; t = time.perf_counter(); from flows.cli import main\n"
        "try:\n    main(['sweep', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED:' + ','.join(m for m in ('dask', 'distributed', 'prefect_dask', 'optuna') if m in sys.modules),"
        " 'SECONDS:%.3f' % (time.perf_counter() - t))"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    wall = time.perf_counter() - started
    loaded, seconds = done.stdout.strip().splitlines()[-1].split(" ")
    assert loaded == "LOADED:" and "--search {grid,optuna}" in done.stdout and "--workers N" in done.stdout
    assert float(seconds.removeprefix("SECONDS:")) < 1.0 and wall < 3.0  # the interpreter's own start included


# --- on a real Dask cluster ----------------------------------------------------------------------------------


def children_of(parent_run_id: str):
    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    return parent, client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'")


@pytest.mark.integration
def test_four_optuna_trials_run_two_at_a_time_on_two_dask_worker_processes(prefect_server, params_file):
    from flows.sweep import run_sweep

    space = parse_space(["train.lr=1e-3..0.5:log", "train.epochs=20..100"])
    result = run_sweep(
        "linear-regression",
        space,
        fanout=FanoutSettings(workers=2),
        root=str(params_file.parent),
        search="optuna",
        trials=4,
        write_back=True,
    )
    parent, children = children_of(result["run_id"])
    assert parent.data.params["sweep.search"] == "optuna" and parent.data.params["sweep.trials"] == "4"
    assert parent.data.params["sweep.grid.train.lr"] == "0.001..0.5:log"
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    assert sorted(c.data.tags["mlflow.runName"].split()[0] for c in children) == [f"trial-{i}" for i in range(4)]
    # the search space was respected: each trial's settings, as the child run logged them
    for child in children:
        assert 1e-3 <= float(child.data.params["train.lr"]) <= 0.5
        epochs = child.data.params["train.epochs"]
        assert epochs.isdigit() and 20 <= int(epochs) <= 100
    # two worker processes, and trials of one batch ran at the same time on different ones
    assert len({c.data.tags["fanout.pid"] for c in children}) == 2
    assert {c.data.tags["fanout.worker"] for c in children} == {"0", "1"}
    # (the tasks' spans on their workers: a fresh worker's first MLflow run may start only after the other
    # worker's first has ended, while its task was already running, e.g. waiting on the tracking store)
    span = {
        c.info.run_id: [int(c.data.tags[f"fanout.task_{end}_ms"]) for end in ("started", "ended")] for c in children
    }
    overlapping = [
        (a, b)
        for a in children
        for b in children
        if a.data.tags["fanout.pid"] < b.data.tags["fanout.pid"]
        and span[a.info.run_id][0] < span[b.info.run_id][1]
        and span[b.info.run_id][0] < span[a.info.run_id][1]
    ]
    assert overlapping, [(*span[c.info.run_id], c.data.tags["fanout.pid"]) for c in children]
    # the best trial is the children's minimum RMSE, reported on the parent and written back
    rmses = {c.info.run_id: c.data.metrics["test_rmse"] for c in children}
    best_id = min(rmses, key=rmses.get)
    assert result["best_value"] == pytest.approx(rmses[best_id]) and result["best_run_id"] == best_id
    assert parent.data.metrics["best_rmse"] == pytest.approx(rmses[best_id])
    assert parent.data.tags["sweep.best_run_id"] == best_id
    written = yaml.safe_load(params_file.read_text())["projects"]["linear-regression"]["train"]
    assert (
        written["lr"] == pytest.approx(result["best"]["train.lr"])
        and written["epochs"] == result["best"]["train.epochs"]
    )


@pytest.mark.integration
def test_a_grid_sweep_on_dask_workers_scores_exactly_as_one_by_one_in_process(prefect_server, params_file, monkeypatch):
    from flows.sweep import run_sweep

    grid = {"train.lr": [0.01, 0.05], "train.epochs": [40]}
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    def scores(workers: int) -> list[dict]:
        result = run_sweep(
            "linear-regression", grid, fanout=FanoutSettings(workers=workers), root=str(params_file.parent)
        )
        assert [row["status"] for row in result["table"]] == ["ok", "ok"]
        return [{k: v for k, v in row.items() if k not in ("run_id", "error")} for row in result["table"]]

    in_process, on_dask = scores(0), scores(2)
    assert in_process[0]["rmse"] != in_process[1]["rmse"]
    assert on_dask == in_process  # exactly: every metric of every configuration


@pytest.mark.integration
def test_active_learning_strategies_on_dask_workers_learn_exactly_as_one_by_one(
    prefect_server, project_root, monkeypatch
):
    """The stage's strategies as Prefect tasks on two Dask workers (what the pipeline does) give the curves,
    labelled items and metrics they give one after the other in this process."""
    import torch
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    from components.active.stage import run_active_learning
    from components.projects import get_project, settings_schemas
    from components.settings import load_project_settings
    from flows.fanout import mapper

    al = {"strategies": ["margin", "bald"], "initial_size": 10, "query_size": 5, "rounds": 1, "mc_samples": 3}
    root = project_root("face-mask", {"train": {"epochs": 1}, "active_learning": {**al, "epochs": 2}})
    spec = get_project("face-mask")
    settings = load_project_settings(root / "params.yaml", "face-mask", settings_schemas())
    data = spec.prepare(settings)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # one thread everywhere: a float sum over 1 thread and 2 differs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = run_active_learning(spec, data, settings, settings.active_learning)
        on_dask = run_active_learning(
            spec, data, settings, settings.active_learning, map_calls=mapper(FanoutSettings(workers=2))
        )
    finally:
        torch.set_num_threads(threads)

    def curves(result):
        return result.report.tables["active_learning_curves"].drop(columns=["seconds"]).to_dict("records")

    assert curves(on_dask) == curves(here) and len(curves(here)) == 3 * 2  # 3 strategies x 2 rounds
    assert on_dask.report.metrics == here.report.metrics
    assert {k: v.tolist() for k, v in on_dask.labelled.items()} == {k: v.tolist() for k, v in here.labelled.items()}
    assert [c.name for c in on_dask.report.children] == [c.name for c in here.report.children]
    with get_client(sync_client=True) as client:  # each strategy was a task run of its own, on the cluster
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="al-")))
    names = {r.name for r in runs if r.state and r.state.is_completed()}
    assert {"al-random", "al-margin", "al-bald"} <= names
