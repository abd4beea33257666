"""Shared fixtures: real MLflow (SQLite), a real Prefect server, real sample data, all in temporary dirs.

The services start once per session (MLflow's schema migration and Prefect's server start take seconds);
each test gets its own project root with its own params.yaml and outputs.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # Set before Prefect or MLflow is imported anywhere: both read their settings at import.
    import tempfile

    services = Path(tempfile.mkdtemp(prefix="dlfolio-test-services-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{services}/mlflow.db"
    os.environ["PREFECT_HOME"] = str(services / "prefect")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    config._dlfolio_services = services
    # Under pytest-xdist each worker would start as many BLAS/OpenMP threads as there are cores: two workers on two
    # cores then fight over them (a 1-epoch CNN ran several times slower). Share the cores out instead; set before
    # torch or numpy is imported, since both read these at import.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, threads)


# The tiers, from cheapest to dearest (markers in pyproject.toml). `make test-fast` runs unit + contract.
TIERS = ("unit", "contract", "integration", "e2e", "team")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: a test without a tier must not slip out unseen
def pytest_collection_modifyitems(config, items):
    """Fail collection unless every test has exactly one tier: a test without one would silently fall out of
    `make test-fast` or be counted twice in the budget, and nobody would notice."""
    wrong = []
    for item in items:
        tiers = sorted({m.name for m in item.iter_markers() if m.name in TIERS})
        if len(tiers) != 1:
            wrong.append(f"  {item.nodeid}: {', '.join(tiers) or 'no tier'}")
    if wrong:
        raise pytest.UsageError(
            f"every test needs exactly one tier marker of {', '.join(TIERS)} (module `pytestmark` or per test):\n"
            + "\n".join(wrong)
        )


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "_dlfolio_services", ""), ignore_errors=True)


@pytest.fixture(autouse=True)
def close_figures():
    """Tests call stages directly, without the logger that closes a report's figures (log_report): close them
    after each test, so a module's figures do not pile up past matplotlib's open-figure warning."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect API server for the session (started on first use only)."""
    from prefect.testing.utilities import prefect_test_harness

    import flows  # noqa: F401

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """``sample_data(project)`` -> path of that project's offline sample, generated once per session.

    Under pytest-xdist the workers share one copy: the first to need a sample writes it (the rest wait on its
    lock), since some take 10-30 s to make. Tests that break a sample work on a copy (``project_root(...,
    copy_data=True)``)."""
    import fcntl

    from components.projects import get_project

    if os.environ.get("PYTEST_XDIST_WORKER"):  # the session's directory, above each worker's own
        root = tmp_path_factory.getbasetemp().parent / "samples"
        root.mkdir(exist_ok=True)
    else:
        root = tmp_path_factory.mktemp("samples")
    made: dict[str, Path] = {}

    def get(project: str) -> Path:
        if project not in made:
            with open(root / f"{project}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                done = root / f"{project}.done"
                if not done.exists():
                    shutil.rmtree(root / project, ignore_errors=True)  # a worker that died half-way
                    get_project(project).make_sample(root / project)
                    done.touch()
            made[project] = root / project
        return made[project]

    return get


def deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture
def project_root(tmp_path, sample_data):
    """``project_root(project, overrides={}, copy_data=False)`` -> a root with params.yaml and data for it.

    The project's section comes from the repository's params.yaml, merged with ``overrides`` (e.g. fewer
    epochs). With ``copy_data`` the sample is copied, so the test may break it.
    """

    def make(project: str, overrides: dict | None = None, copy_data: bool = False) -> Path:
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        section = deep_merge(params["projects"][project], overrides or {})
        data = sample_data(project)
        if copy_data:
            shutil.copytree(data, tmp_path / "data" / project)
            data = tmp_path / "data" / project
        section["data_dir"] = str(data)
        (tmp_path / "params.yaml").write_text(
            yaml.safe_dump({"defaults": params.get("defaults", {}), "projects": {project: section}})
        )
        return tmp_path

    return make


@pytest.fixture
def run_cli(capsys):
    """Run ``dlfolio ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from flows.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


sys.path.insert(0, str(REPO))


@pytest.fixture
def mlflow_serve():
    """``mlflow_serve(model_uri)`` -> ``post(payload) -> (status, json)``: the model served by a real
    ``mlflow models serve --env-manager local`` on 127.0.0.1 (stopped after the test)."""
    import json
    import socket
    import subprocess
    import time
    import urllib.error
    import urllib.request

    servers: list[subprocess.Popen] = []

    def serve(model_uri: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        servers.append(server)
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    raise AssertionError(
                        f"mlflow models serve did not come up:\n{server.stdout.read()[-3000:]}"
                    ) from None
                time.sleep(0.5)

        def post(payload: dict):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations",
                data=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read() or b"{}")

        return post

    yield serve
    for server in servers:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
