"""`dlfolio run` shares one background Prefect server per PREFECT_HOME instead of starting one per process.

Real `prefect server start`, real `dlfolio` subprocesses: the first run starts the server, the next reuses it,
both flow runs are in its database (what its UI shows), and `dlfolio server stop` ends it.
"""

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def home(tmp_path):
    """An empty PREFECT_HOME; whatever server a test leaves in it is stopped afterwards."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    yield home
    state = home / "dlfolio-server.json"
    if state.exists():
        import signal

        try:
            os.killpg(json.loads(state.read_text())["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def dlfolio(home: Path, *args: str, port: int | None = None, terminal: bool = False) -> subprocess.CompletedProcess:
    """``dlfolio ARGS`` with its own PREFECT_HOME; ``terminal``: stdout and stderr on a pseudo-terminal, as in a
    user's shell (Prefect prints some lines only there), both in ``stdout``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "DO_NOT_TRACK")}  # find or start one
    env.update(PYTHONPATH=str(REPO), PREFECT_HOME=str(home), NO_COLOR="1")
    if port:
        env["PREFECT_SERVER_API_PORT"] = str(port)
    command = [str(Path(sys.executable).with_name("dlfolio")), *args]
    if not terminal:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    import pty
    import threading

    main, child = pty.openpty()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=child, stderr=child, env=env)
    os.close(child)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    code = process.wait(timeout=600)
    reader.join(timeout=30)
    os.close(main)
    return subprocess.CompletedProcess(command, code, b"".join(chunks).decode(errors="replace"), "")


def flow_runs(api_url: str) -> list[dict]:
    request = urllib.request.Request(
        f"{api_url}/flow_runs/filter", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.unit
def test_status_without_a_server_says_so_and_a_stale_state_file_is_dropped(home):
    from flows.server import STATE_FILE, find_server

    done = dlfolio(home, "server", "status")
    assert done.returncode == 1 and "no dlfolio Prefect server runs" in done.stdout
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs, as after a reboot
    (home / STATE_FILE).write_text(json.dumps({"pid": dead.pid, "port": free_port(), "home": str(home)}))
    assert find_server(home) is None
    assert not (home / STATE_FILE).exists()


@pytest.mark.integration
def test_runs_share_one_background_server_whose_database_holds_them_until_stopped(home, project_root):
    root = project_root("linear-regression", {"train": {"epochs": 20}})
    port = free_port()

    # In a terminal, as a user runs it (a fresh PREFECT_HOME, as on a fresh clone).
    first = dlfolio(home, "run", "linear-regression", "--root", str(root), port=port, terminal=True)
    log = first.stdout
    assert first.returncode == 0, log
    assert "Starting temporary server" not in log  # no per-process ephemeral server any more
    # A default run is quiet: no warning line of ours or a library's, no pointer to Prefect's docs (its client
    # telemetry notice, printed in a terminal unless DO_NOT_TRACK), and no empty task run for a stage the
    # project does not use (linear-regression has no active learning; it has conformal intervals).
    assert [line for line in log.splitlines() if "warn" in line.lower() or "docs." in line.lower()] == []
    assert "Task run 'active-learning" not in log and "Task run 'conformal" in log
    assert "Task run 'train" in log  # the terminal did carry the run's log
    state = json.loads((home / "dlfolio-server.json").read_text())
    assert state["port"] == port
    status = dlfolio(home, "server", "status")
    assert status.returncode == 0 and f"UI http://127.0.0.1:{port}" in status.stdout

    second = dlfolio(home, "run", "linear-regression", "--root", str(root), port=port)
    assert second.returncode == 0, second.stderr
    assert json.loads((home / "dlfolio-server.json").read_text())["pid"] == state["pid"]  # reused, not restarted

    api = f"http://127.0.0.1:{port}/api"
    runs = [r for r in flow_runs(api) if r["name"] == "linear-regression"]
    assert len(runs) == 2 and {r["state_type"] for r in runs} == {"COMPLETED"}
    assert (home / "prefect.db").exists()  # the database lives in the shared home

    stop = dlfolio(home, "server", "stop")
    assert stop.returncode == 0 and f"pid {state['pid']}" in stop.stdout
    assert not (home / "dlfolio-server.json").exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(state["pid"], 0)
    assert dlfolio(home, "server", "status").returncode == 1


SERVED = """
import sys
from datetime import timedelta
from pathlib import Path

from prefect import flow

from flows.schedules import serve


@flow(name="mark")
def mark(path: str) -> None:
    Path(path).write_text("ran")


if __name__ == "__main__":
    serve([
        mark.to_deployment(name="every-5s", interval=timedelta(seconds=5), parameters={"path": sys.argv[1]}),
        mark.to_deployment(name="nightly", cron="0 3 * * *", parameters={"path": sys.argv[1] + ".cron"}),
    ])
"""


@pytest.mark.integration
def test_a_served_schedule_fires_its_runs_on_a_real_prefect_server(home, tmp_path):
    """The scheduler of `prefect server start` creates the runs a schedule asks for, and the serving process (what
    `dlfolio schedule` is) executes them. Prefect 3.8's scheduler on SQLAlchemy 2.1 created none ("Can't evaluate
    bulk DML statement"): face-mask's cron never fired."""
    port = free_port()
    # The scheduler's loop is 60 s by default; 2 s keeps the test short without changing what it exercises.
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        PYTHONPATH=str(REPO),
        PREFECT_HOME=str(home),
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
        NO_COLOR="1",
    )
    started = subprocess.run(
        [str(Path(sys.executable).with_name("dlfolio")), "server", "start"], env=env, capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr
    api = f"http://127.0.0.1:{port}/api"
    script, marker = tmp_path / "served.py", tmp_path / "marker.txt"
    script.write_text(SERVED)
    served = subprocess.Popen(
        [sys.executable, str(script), str(marker)],
        env={**env, "PREFECT_API_URL": api, "PREFECT_RUNNER_POLL_FREQUENCY": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        import time

        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline and served.poll() is None:
            time.sleep(1)
        runs = flow_runs(api)
        assert marker.read_text() == "ran", served.stdout.read().decode() if served.poll() is not None else ""
    finally:
        os.killpg(served.pid, 9)
        served.wait()
        subprocess.run([str(Path(sys.executable).with_name("dlfolio")), "server", "stop"], env=env, timeout=60)
    scheduled = [r for r in runs if r["auto_scheduled"]]
    assert any(r["state_type"] == "COMPLETED" for r in scheduled)  # created by the scheduler, run by the served process
    # The cron deployment gets its future runs too (at 03:00 UTC: scheduled, not yet run).
    nightly = [
        r for r in scheduled if r["state_type"] == "SCHEDULED" and r["expected_start_time"].endswith("03:00:00Z")
    ]
    assert nightly, sorted({(r["state_type"], r["expected_start_time"]) for r in scheduled})
    server_log = (home / "dlfolio-server.log").read_text()
    assert "InvalidRequestError" not in server_log


@pytest.mark.integration
def test_ctrl_c_or_sigterm_stops_dlfolio_schedule_cleanly_with_its_schedules_paused(home, project_root):
    """`dlfolio schedule` serves until interrupted. Ctrl-C (SIGINT) and SIGTERM each pause the deployment's
    schedule and exit 0, with nothing on stderr but Prefect's shutdown lines: no "coroutine 'Runner.astop' was
    never awaited" (Prefect's own SIGTERM handler left that warning, then exited mid-shutdown)."""
    import signal
    import time

    root = project_root("linear-regression", {"schedule": "0 3 * * 1"})
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "DO_NOT_TRACK")}
    env.update(PYTHONPATH=str(REPO), PREFECT_HOME=str(home), PREFECT_SERVER_API_PORT=str(port), NO_COLOR="1")
    script = str(Path(sys.executable).with_name("dlfolio"))
    started = subprocess.run([script, "server", "start"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    api = f"http://127.0.0.1:{port}/api"
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            served = subprocess.Popen(
                [script, "schedule", "--root", str(root)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline, lines = time.monotonic() + 180, []
            while time.monotonic() < deadline and not any(line.startswith("serving 1") for line in lines):
                line = served.stdout.readline()
                if not line:  # exited before serving
                    break
                lines.append(line)
            time.sleep(3)  # the runner registers the deployment and starts polling
            served.send_signal(sig)
            # on a loaded CI (the other xdist worker training) the runner's shutdown has taken over 120 s
            out, err = served.communicate(timeout=300)
            assert served.returncode == 0, (sig, err)
            assert "never awaited" not in err and "Traceback" not in err and "Warning" not in err, (sig, err)
            assert "stopped: schedules paused" in out, (sig, "".join(lines) + out)
            request = urllib.request.Request(
                f"{api}/deployments/filter", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                [deployment] = json.loads(response.read())
            assert deployment["name"] == "linear-regression-retrain-and-promote" and deployment["paused"], sig
    finally:
        subprocess.run([script, "server", "stop"], env=env, timeout=60)
