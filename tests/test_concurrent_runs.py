"""Two runs of one project never destroy each other, and a failed run never deletes the last good outputs.

On main d432da5 both runs staged into ``outputs/.P.partial`` and ``begin()`` deleted ``outputs/P``: a cron
retrain beside a manual run failed both and left no outputs at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from components.errors import BusyError, DlfolioError
from components.tracking.outputs import RunOutputs
from tests.conftest import REPO

pytestmark = pytest.mark.unit


def publish_run(root, value: float) -> None:
    run = RunOutputs(root, "demo").begin()
    run.write({"accuracy": value}, {}, {}, "accuracy")
    run.publish()


def published(root) -> dict:
    return json.loads((root / "demo" / "metrics.json").read_text())


def test_a_second_run_of_the_same_project_fails_fast_and_leaves_the_first_alone(tmp_path):
    first = RunOutputs(tmp_path, "demo").begin()
    (first.model_dir / "weights.pt").write_bytes(b"first")
    with pytest.raises(BusyError) as caught:
        RunOutputs(tmp_path, "demo").begin()
    message = str(caught.value)
    assert isinstance(caught.value, DlfolioError) and "\n" not in message  # the CLI prints one line, exit 2
    assert message.startswith(f"project demo is already running (pid {os.getpid()}, since 20")
    assert (first.model_dir / "weights.pt").read_bytes() == b"first"  # the first run's staging survived
    RunOutputs(tmp_path, "other").begin().discard()  # another project is not blocked
    first.write({"accuracy": 1.0}, {}, {}, "accuracy")
    assert first.publish() == tmp_path / "demo" and published(tmp_path) == {"accuracy": 1.0}
    RunOutputs(tmp_path, "demo").begin().discard()  # publish released the lock


def test_staging_directories_are_per_run(tmp_path):
    a, b = RunOutputs(tmp_path, "demo"), RunOutputs(tmp_path, "demo")
    assert a.staging != b.staging and a.staging.name.startswith(f".demo.partial-{os.getpid()}-")


def test_a_failed_run_keeps_the_last_good_outputs_and_a_good_one_replaces_them(tmp_path):
    publish_run(tmp_path, 0.9)
    failed = RunOutputs(tmp_path, "demo").begin()
    failed.write({"accuracy": 0.1}, {}, {}, "accuracy")
    assert published(tmp_path) == {"accuracy": 0.9}  # begin() no longer deletes outputs/demo
    failed.discard()
    assert published(tmp_path) == {"accuracy": 0.9}
    publish_run(tmp_path, 0.95)
    assert published(tmp_path) == {"accuracy": 0.95}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".locks", "demo"]  # no staging, nothing set aside


def test_a_crash_between_the_two_renames_of_publish_is_repaired_by_the_next_run(tmp_path):
    publish_run(tmp_path, 0.9)
    (tmp_path / "demo").rename(tmp_path / ".demo.old-123-abcd")  # killed after setting the old outputs aside
    (tmp_path / ".demo.partial-123-abcd").mkdir()
    run = RunOutputs(tmp_path, "demo").begin()
    assert published(tmp_path) == {"accuracy": 0.9}
    assert not (tmp_path / ".demo.old-123-abcd").exists() and not (tmp_path / ".demo.partial-123-abcd").exists()
    run.discard()


HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from components.tracking.outputs import RunOutputs
    run = RunOutputs(Path(sys.argv[1]), "demo").begin()
    (run.model_dir / "weights.pt").write_bytes(b"other process")
    print(run.staging, flush=True)
    time.sleep(60)
    """
)


def test_a_run_in_another_process_holds_the_project_until_it_dies(tmp_path):
    publish_run(tmp_path, 0.9)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        staging = other.stdout.readline().strip()
        assert staging, "the other run did not start"
        with pytest.raises(BusyError, match=rf"project demo is already running \(pid {other.pid}, since "):
            RunOutputs(tmp_path, "demo").begin()
        assert (tmp_path / staging.split("/")[-1] / "model" / "weights.pt").read_bytes() == b"other process"
        assert published(tmp_path) == {"accuracy": 0.9}
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    # kill -9: the kernel dropped its lock; the next run starts, removes the dead run's staging, keeps the outputs
    run = RunOutputs(tmp_path, "demo").begin()
    assert not (tmp_path / staging.split("/")[-1]).exists()
    assert published(tmp_path) == {"accuracy": 0.9}
    run.discard()


def test_dlfolio_run_of_a_running_project_is_one_line_and_exit_2_before_prefect(project_root, run_cli, monkeypatch):
    import flows.cli
    from components.locks import project_run_lock

    def no_prefect():
        raise AssertionError("the CLI went on to start Prefect")

    monkeypatch.setattr(flows.cli, "use_prefect", no_prefect)
    root = project_root("linear-regression")
    with project_run_lock(root / "outputs", "linear-regression"):
        code, _, err = run_cli("run", "linear-regression", "--root", str(root))
    assert code == 2
    assert err.startswith(f"dlfolio: error: project linear-regression is already running (pid {os.getpid()}, since ")
    assert len(err.strip().splitlines()) == 1
