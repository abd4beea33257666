"""prefect.yaml on a process work pool: `prefect deploy --all` registers the scheduled deployments, and a real
`prefect worker` runs a retrain-and-promote flow run, which registers a version and promotes it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import REPO

pytestmark = pytest.mark.integration

PROJECT = "linear-regression"


def test_the_committed_prefect_yaml_is_the_generated_one():
    from flows.schedules import prefect_yaml

    assert (REPO / "prefect.yaml").read_text() == prefect_yaml("params.yaml", REPO), (
        "prefect.yaml is stale: run `dlfolio schedule --write-prefect-yaml`"
    )


def prefect(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_a_worker_runs_a_deployed_retrain_and_promote(prefect_server, project_root, tmp_path):
    from prefect.settings import PREFECT_API_URL

    from flows.schedules import WORK_POOL, deployment_name, prefect_yaml

    root = project_root(PROJECT, {"schedule": "0 3 * * 1"})
    api = PREFECT_API_URL.value()
    env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": str(REPO)}
    spec = tmp_path / "prefect.yaml"
    spec.write_text(prefect_yaml("params.yaml", root, project_root=str(root)))
    assert [d["name"] for d in yaml.safe_load(spec.read_text())["deployments"]] == [deployment_name(PROJECT)]

    prefect("work-pool", "create", WORK_POOL, "--type", "process", "--overwrite", env=env)
    prefect("--no-prompt", "deploy", "--all", "--prefect-file", str(spec), env=env)  # from the checkout: code dir
    deployment = httpx.get(f"{api}/deployments/name/retrain-and-promote/{deployment_name(PROJECT)}").json()
    assert deployment["work_pool_name"] == WORK_POOL and deployment["schedules"][0]["schedule"]["cron"] == "0 3 * * 1"

    run = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json={}).json()
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL, "--type", "process"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 420
        while True:
            state = httpx.get(f"{api}/flow_runs/{run['id']}").json()["state"]["type"]
            if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") or time.monotonic() > deadline:
                break
            time.sleep(2)
    finally:
        worker.terminate()
        log = worker.communicate(timeout=60)[0]
    assert state == "COMPLETED", log[-4000:]
    # What the worker's run did: the pipeline registered a version under the deployment run (its root flow run),
    # and the gate decided on it (other tests of the session may hold a champion already, so either outcome).
    client = MlflowClient()
    mine = [
        v
        for v in client.search_model_versions(f"name = '{PROJECT}'")
        if client.get_run(v.run_id).data.tags.get("prefect.root_flow_run_id") == run["id"]
    ]
    assert len(mine) == 1, [v.version for v in mine]
    decision = client.get_model_version(PROJECT, mine[0].version).tags.get("promotion.decision")
    assert decision in ("promoted", "refused"), decision
