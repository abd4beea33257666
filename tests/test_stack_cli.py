"""`dlfolio stack`: the cheap promises (fast help, clear failures, a compose file that matches the tested stack).

The stack itself, started for real, is tested end to end in tests/test_prefect_server.py (integration)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.unit


def dlfolio(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_help_imports_none_of_the_heavy_libraries():
    started = time.monotonic()
    done = dlfolio("stack", "--help")
    assert done.returncode == 0 and "postgres" in done.stdout and "down" in done.stdout
    assert time.monotonic() - started < 5  # ~0.1 s here; the import check below is the real guard
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from flows.cli import build_parser; build_parser(); "
         "print(sorted(m for m in ('prefect', 'mlflow', 'torch', 'boto3', 'psycopg2') if m in sys.modules))"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr


def test_status_and_down_of_a_stack_never_started(tmp_path):
    status = dlfolio("stack", "status", DLFOLIO_STACK_DIR=str(tmp_path / "state"))
    assert status.returncode == 1
    assert status.stdout.splitlines() == [f"{s}: not running" for s in ("postgres", "s3", "mlflow", "prefect", "worker")]
    down = dlfolio("stack", "down", DLFOLIO_STACK_DIR=str(tmp_path / "state"))
    assert down.returncode == 0 and "nothing was running" in down.stdout


def test_a_service_that_cannot_start_is_named_in_one_line(tmp_path):
    done = dlfolio("stack", "up", DLFOLIO_STACK_DIR=str(tmp_path / "state"), DLFOLIO_PG_BIN=str(tmp_path / "no-pg"))
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("dlfolio: error: stack: postgres did not come up") and "initdb" in line, line


def test_docker_compose_runs_the_tested_stacks_services_with_its_settings():
    from flows import stack

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "minio", "mlflow", "prefect", "worker"} <= set(services)
    for service in services.values():  # nothing published beyond this machine
        assert all(str(p).startswith("127.0.0.1:") for p in service.get("ports", [])), service
    assert services["postgres"]["environment"] == {"POSTGRES_USER": stack.USER, "POSTGRES_PASSWORD": stack.PASSWORD}
    databases = (REPO / "compose" / "initdb.sql").read_text()
    assert "CREATE DATABASE mlflow;" in databases and "CREATE DATABASE prefect;" in databases
    minio = services["minio"]["environment"]
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == (stack.AWS_KEY, stack.AWS_SECRET)
    assert f"s3/{stack.BUCKET}" in " ".join(services["bucket"]["entrypoint"])
    mlflow = services["mlflow"]
    assert f"--artifacts-destination s3://{stack.BUCKET}/mlflow" in mlflow["command"]
    assert f"postgresql://{stack.USER}:{stack.PASSWORD}@postgres:5432/mlflow" in mlflow["command"]
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert mlflow["environment"]["AWS_ACCESS_KEY_ID"] == stack.AWS_KEY
    prefect = services["prefect"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert prefect == f"postgresql+asyncpg://{stack.USER}:{stack.PASSWORD}@postgres:5432/prefect"
    worker = services["worker"]
    assert f"--pool {stack.WORK_POOL} --type process" in worker["command"]
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect:4200/api"
    # and the stack's own settings say the same
    local = stack.Stack(Path("/nowhere"), REPO, ports=dict(stack.PORTS))
    assert local.database_url("prefect", "postgresql+asyncpg").endswith("/prefect")
    assert local.exports()["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
