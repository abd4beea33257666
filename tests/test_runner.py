"""The warm runner (`dlfolio runner`, flows/runner.py): a `dlfolio run` forked from it is the same command.

Same result and exit status as the command in its own process, output on the caller's own streams, the caller's
signals reach the pipeline, a caller killed with -9 takes its pipeline with it, and a caller with other Prefect
settings is refused and runs in its own process. All against a real Prefect server and the real CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import REPO

PROJECT = "linear-regression"
DLFOLIO = [sys.executable, "-m", "flows.cli"]


@pytest.fixture(scope="module")
def runner(prefect_server, sample_data, tmp_path_factory):
    """(root, env with DLFOLIO_RUNNER): a runner serving a root with linear-regression's sample and two sections
    of params: the default one and one that trains for minutes (for the signal tests)."""
    from prefect.settings import PREFECT_API_URL

    root = tmp_path_factory.mktemp("runner")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = {**params["projects"][PROJECT], "data_dir": str(sample_data(PROJECT))}
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params.get("defaults", {}), "projects": {PROJECT: section}})
    )
    slow = {**section, "train": {**section["train"], "epochs": 2_000_000, "log_every": 1_000_000}}
    (root / "slow.yaml").write_text(
        yaml.safe_dump({"defaults": params.get("defaults", {}), "projects": {PROJECT: slow}})
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DLFOLIO_"))},
        "PYTHONPATH": str(REPO),
        "PREFECT_API_URL": PREFECT_API_URL.value(),  # the session's server: no second one to start
    }
    started = subprocess.run(
        [*DLFOLIO, "runner", "start", "--quiet"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert started.returncode == 0, started.stderr
    key, _, socket = started.stdout.strip().removeprefix("export ").partition("=")
    yield root, {**env, key: socket}
    subprocess.run([*DLFOLIO, "runner", "stop"], cwd=root, env=env, timeout=60)
    assert subprocess.run([*DLFOLIO, "runner", "status", "--quiet"], cwd=root, env=env, timeout=60).returncode == 1


def dlfolio(root, env, *args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*DLFOLIO, *args], cwd=root, env=env, capture_output=True, text=True, timeout=600, **kwargs)


def runner_log(root) -> str:
    return (root / ".dlfolio" / "runner.log").read_text()


def metrics(stdout: str) -> dict[str, str]:
    last = stdout.strip().splitlines()[-1]
    return dict(item.split("=", 1) for item in last.split())


@pytest.mark.integration
def test_a_forked_run_gives_the_result_and_status_of_a_run_in_its_own_process(runner):
    root, env = runner
    forked = dlfolio(root, env, "run", PROJECT)
    assert forked.returncode == 0, forked.stderr
    assert runner_log(root).count(f"started ['run', '{PROJECT}'") == 1
    assert "Finished in state Completed()" in forked.stderr  # Prefect's log, on the caller's own stderr
    # Another Prefect setting: the runner refuses it (its Prefect was imported with its own settings) and the
    # command runs in its own process, as it does without a runner.
    own = dlfolio(root, {**env, "PREFECT_LOGGING_LEVEL": "INFO"}, "run", PROJECT)
    assert own.returncode == 0, own.stderr
    assert "refused" in runner_log(root) and runner_log(root).count("started ['run'") == 1
    a, b = metrics(forked.stdout), metrics(own.stdout)
    assert float(a["r2"]) > 0.99  # it learned: the sample's line is Fahrenheit = 1.8 Celsius + 32
    assert {k: v for k, v in a.items() if k not in ("run_id", "model_version")} == {
        k: v for k, v in b.items() if k not in ("run_id", "model_version")
    }
    assert int(b["model_version"]) == int(a["model_version"]) + 1


@pytest.mark.integration
def test_a_failing_command_fails_the_same_way_through_the_runner(runner):
    root, env = runner
    done = dlfolio(root, env, "run", PROJECT, "--params", "missing.yaml")
    assert done.returncode == 2
    assert done.stderr.startswith("dlfolio: error:") and "missing.yaml" in done.stderr
    assert "Traceback" not in done.stderr
    assert "started ['run', 'linear-regression', '--params', 'missing.yaml'" in runner_log(root)


def pipeline_pid(root, timeout: float = 120.0) -> int:
    """The pid holding the project's run lock: the forked pipeline, not the caller."""
    lock = root / "outputs" / ".locks" / f"{PROJECT}.lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return int(json.loads(lock.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    raise AssertionError(f"no pipeline took {lock}")


def gone(pid: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def start_slow_caller(root, env, **streams) -> tuple[subprocess.Popen, int]:
    """A caller of a slow run through the runner, and the pid of the pipeline it started."""
    (root / "outputs" / ".locks" / f"{PROJECT}.lock").unlink(missing_ok=True)  # the last holder's record
    caller = subprocess.Popen([*DLFOLIO, "run", PROJECT, "--params", "slow.yaml"], cwd=root, env=env, **streams)
    pid = pipeline_pid(root)
    assert pid != caller.pid
    return caller, pid


@pytest.mark.integration
def test_sigterm_to_the_caller_stops_the_pipeline_with_the_callers_status(runner):
    caller, pid = start_slow_caller(*runner, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    caller.send_signal(signal.SIGTERM)
    _, err = caller.communicate(timeout=120)
    assert caller.returncode == 128 + signal.SIGTERM, err
    assert gone(pid)


@pytest.mark.integration
def test_a_caller_killed_with_minus_9_takes_its_pipeline_with_it(runner):
    caller, pid = start_slow_caller(*runner, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    caller.kill()
    caller.wait(timeout=30)
    assert gone(pid), f"pipeline {pid} outlived its caller"


@pytest.mark.unit
def test_an_edited_source_file_makes_the_runner_refuse_rather_than_run_old_code(tmp_path):
    from flows.runner import Runner, prefect_settings, source_stamps

    runner = Runner(tmp_path)
    runner.sources = source_stamps()
    assert runner.sources and runner.stale() == []
    edited = next(iter(runner.sources))
    runner.sources[edited] -= 1  # as if the file on disk were newer than what the runner imported
    assert runner.stale() == [edited]
    request = {"env": dict(os.environ), "cwd": str(tmp_path)}
    runner.settings = prefect_settings(request["env"], request["cwd"])
    runner.own_server = False
    assert "changed since the runner started" in runner.refusal(request)
