"""Offline means offline: a pipeline run and DVC, in a network namespace that has only a loopback device, try
no connection beyond 127.0.0.1 (no telemetry, no analytics, not even a DNS lookup).

strace records every connect() of the processes and their children; MLflow's telemetry and DVC's analytics
each tried a DNS lookup before they were switched off (components/__init__.py, .dvc/config).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration
ADDRESS = re.compile(
    r'sin_port=htons\((\d+)\), sin_addr=inet_addr\("([\d.]+)"\)|sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]+)"'
)


def sealed(command: list[str], trace: Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``command`` with loopback as the only network, tracing connect() across its process tree."""
    script = 'ip link set lo up && exec strace -f -qq --seccomp-bpf -e trace=connect -o "$0" "$@"'
    return subprocess.run(
        ["unshare", "--map-root-user", "--net", "sh", "-c", script, str(trace), *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def outside_loopback(trace: Path) -> list[str]:
    """The connect() calls to anything but loopback, and any DNS query (port 53, wherever it goes)."""
    bad = []
    for line in trace.read_text().splitlines():
        for match in ADDRESS.finditer(line):
            port, address = (match[1], match[2]) if match[1] else (match[3], match[4])
            if port == "53" or not (address.startswith("127.") or address == "::1"):
                bad.append(line)
    return bad


# Libraries stay quiet by themselves under pytest or CI (MLflow checks these); a user's shell has none of them.
TEST_OR_CI = ("PYTEST_", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "TRAVIS")


def clean_env(home: Path) -> dict[str, str]:
    """The environment of a user's shell: no test or CI markers, no server or telemetry settings of our own."""
    ours = ("PREFECT_API_URL", "MLFLOW_", "DO_NOT_TRACK")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours + TEST_OR_CI)}
    return {**env, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(home), "NO_COLOR": "1"}


def test_a_pipeline_run_connects_to_nothing_but_loopback(project_root, tmp_path):
    root = project_root("linear-regression", {"train": {"epochs": 5}})
    trace, home = tmp_path / "run.trace", tmp_path / "prefect-home"
    dlfolio = str(Path(sys.executable).with_name("dlfolio"))
    # The run starts the background Prefect server inside the namespace; stopping it there too ends the traced
    # process tree (strace follows the server as well, so its connections are checked too).
    command = f'"{dlfolio}" run linear-regression --root "{root}"; status=$?; "{dlfolio}" server stop; exit $status'
    done = sealed(["sh", "-c", command], trace, root, clean_env(home))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "127.0.0.1" in trace.read_text()  # the trace works: the run talks to its Prefect server on loopback
    assert outside_loopback(trace) == []


def test_dvc_with_the_repository_config_sends_no_analytics(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / ".dvc").mkdir()
    shutil.copy(REPO / ".dvc" / "config", tmp_path / ".dvc" / "config")
    dvc = str(Path(sys.executable).with_name("dvc"))
    trace = tmp_path / "dvc.trace"
    done = sealed([dvc, "status"], trace, tmp_path, clean_env(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    assert outside_loopback(trace) == []
