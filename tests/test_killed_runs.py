"""A run killed by SIGTERM ends KILLED at once; one killed by kill -9 is marked KILLED by the next run.

On main d432da5 both left the MLflow run RUNNING forever (and its active-learning children with it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from mlflow.tracking import MlflowClient

from components.tracking import runs as tracking
from tests.conftest import REPO

pytestmark = pytest.mark.integration

VICTIM = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import mlflow
    from components.tracking import runs as tracking
    root = Path(sys.argv[1])
    tracking.configure(root)
    with tracking.parent_run(sys.argv[2], root, "victim", {"project": "demo"}) as run:
        exp = run.info.experiment_id  # as log_children files the active-learning rounds
        with mlflow.start_run(run_name="al-round-0", nested=True, experiment_id=exp) as child:
            print(run.info.run_id, child.info.run_id, flush=True)
            time.sleep(120)
    """
)


def start_victim(tmp_path, experiment: str) -> tuple[subprocess.Popen, str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", VICTIM, str(tmp_path), experiment],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stdout.readline().split()
    assert len(line) == 2, proc.stderr.read()
    return proc, line[0], line[1]


def status(run_id: str) -> str:
    return MlflowClient().get_run(run_id).info.status


def test_sigterm_ends_the_run_killed(tmp_path):
    proc, run_id, _ = start_victim(tmp_path, "sigterm-demo")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert status(run_id) == "KILLED"
    assert MlflowClient().get_run(run_id).data.tags["failure"].startswith("SystemExit")


def test_after_kill_9_the_next_run_marks_the_dead_run_and_its_children_killed(tmp_path):
    proc, run_id, child_id = start_victim(tmp_path, "kill9-demo")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert status(run_id) == status(child_id) == "RUNNING"  # what kill -9 leaves
    tracking.configure(tmp_path)
    with tracking.parent_run("kill9-demo", tmp_path, "next", {"project": "demo"}) as run:
        assert status(run_id) == status(child_id) == "KILLED"
        failure = MlflowClient().get_run(run_id).data.tags["failure"]
        assert f"pid {proc.pid} on " in failure and "marked KILLED by the next run" in failure
    assert status(run.info.run_id) == "FINISHED"


def test_a_live_processs_run_is_left_running(tmp_path):
    proc, run_id, child_id = start_victim(tmp_path, "alive-demo")
    try:
        tracking.configure(tmp_path)
        with tracking.parent_run("alive-demo", tmp_path, "beside", {"project": "demo"}):
            pass
        assert status(run_id) == status(child_id) == "RUNNING"
    finally:
        proc.kill()
        proc.wait()
