"""dlfolio ui: the MLflow UI on the embedded tracking store."""

import os
import signal
import subprocess
import sys
from pathlib import Path

# The server's job runner (GenAI judges and scorers) starts eight worker processes; the UI needs none of them.
ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def register(sub) -> None:
    p = sub.add_parser(
        "ui",
        help="open the MLflow UI (experiments, runs, plots, registered models) on 127.0.0.1",
        description="Start the MLflow UI against this project's tracking store (mlruns/mlflow.db, or "
        "MLFLOW_TRACKING_URI) on http://127.0.0.1:PORT until interrupted. It listens on "
        "127.0.0.1 only; use an SSH tunnel to reach it from another machine. With MLFLOW_TRACKING_URI=http(s)://... "
        "the tracking server serves its own UI: this prints its address and exits.",
    )
    p.add_argument("--port", type=int, default=5000, help="port to listen on (default: %(default)s)")
    p.add_argument("--root", default=".", help="project root holding mlruns/ (default: cwd)")
    p.set_defaults(func=main)


def command(root: Path, port: int) -> list[str]:
    from components.tracking import runs as tracking

    uri = tracking.configure(root)  # creates mlruns/ for the embedded store
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--registry-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]  # one user, 2 cores


def ui_url(port: int) -> str:
    """The registered models, in MLflow's model-training view: its home opens in GenAI mode, which hides Models."""
    return f"http://127.0.0.1:{port}/#/models?workflowType=machine_learning"


class _Stop(Exception):
    """SIGTERM or SIGHUP: stop the server like Ctrl-C does."""


def _stop(signum, frame):
    raise _Stop(signum)


def server_ui(uri: str) -> str | None:
    """A tracking server's own UI (its models view), or None for a store that needs a local UI."""
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/") + "/#/models?workflowType=machine_learning"
    return None


def main(args) -> int:
    from components.tracking import runs as tracking

    remote = server_ui(tracking.tracking_uri(Path(args.root).resolve()))
    if remote is not None:  # the tracking server serves the UI itself; a second one here would not reach it
        print(f"MLflow UI: {remote} (the tracking server's own UI, from MLFLOW_TRACKING_URI)", flush=True)
        return 0
    cmd = command(Path(args.root).resolve(), args.port)
    print(
        f"MLflow UI on {ui_url(args.port)} (store: {cmd[cmd.index('--backend-store-uri') + 1]}); Ctrl-C stops it",
        flush=True,
    )
    # The server (mlflow, then uvicorn and its worker) runs in its own process group, so one signal stops all of
    # it; without this a SIGTERM to `dlfolio ui` (systemd, a cron wrapper, `kill`) ended only this process and
    # left the server listening, orphaned.
    server = subprocess.Popen(cmd, env={**ENVIRONMENT, **os.environ}, start_new_session=True)
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return server.wait()
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        stop_group(server)


def stop_group(server: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to the server's process group, SIGKILL to what is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return  # the whole group is gone
        try:
            server.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; its workers may linger a moment longer
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            return
