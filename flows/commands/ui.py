"""dlfolio ui: the MLflow UI on the embedded tracking store."""

import os
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
        "127.0.0.1 only; use an SSH tunnel to reach it from another machine.",
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


def main(args) -> int:
    cmd = command(Path(args.root).resolve(), args.port)
    print(
        f"MLflow UI on http://127.0.0.1:{args.port} (store: {cmd[cmd.index('--backend-store-uri') + 1]}); "
        "Ctrl-C stops it",
        flush=True,
    )
    try:
        return subprocess.run(cmd, env={**ENVIRONMENT, **os.environ}).returncode
    except KeyboardInterrupt:
        return 0
