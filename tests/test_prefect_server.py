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


# prefect.yaml on a process work pool: `prefect deploy --all` registers the scheduled deployments, and a real
# `prefect worker` runs a retrain-and-promote flow run, which registers a version and promotes it. Here, in this
# module, so that it runs after the other server tests of the module on the same xdist worker (--dist loadfile).


@pytest.mark.unit
def test_the_committed_prefect_yaml_is_the_generated_one():
    from flows.schedules import prefect_yaml

    assert (REPO / "prefect.yaml").read_text() == prefect_yaml("params.yaml", REPO), (
        "prefect.yaml is stale: run `dlfolio schedule --write-prefect-yaml`"
    )


def prefect_cli(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def stop_worker(worker: subprocess.Popen, grace: float = 60) -> str:
    """SIGTERM to the worker's group; SIGKILL if it has not shut down within ``grace`` s. Returns its output."""
    import signal

    os.killpg(worker.pid, signal.SIGTERM)
    try:
        return worker.communicate(timeout=grace)[0]
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        return worker.communicate(timeout=30)[0] + f"\n[killed: not shut down within {grace:.0f} s of SIGTERM]"


@pytest.mark.integration
def test_a_worker_runs_a_deployed_retrain_and_promote(prefect_server, project_root, tmp_path):
    import time

    import httpx
    import yaml
    from mlflow.tracking import MlflowClient
    from prefect.settings import PREFECT_API_URL

    from flows.schedules import WORK_POOL, deployment_name, prefect_yaml

    project = "linear-regression"
    experiment = f"worker-{tmp_path.name}"  # its own experiment: other tests' runs of the project stay apart
    root = project_root(project, {"schedule": "0 3 * * 1", "experiment": experiment})
    api = PREFECT_API_URL.value()
    # Its own MLflow store too: in the session's shared one, another test's linear-regression champion lives in
    # that test's artifact folder, which the gate rightly refuses to unpickle (the run then FAILED in CI).
    store = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": store}
    spec = tmp_path / "prefect.yaml"
    spec.write_text(prefect_yaml("params.yaml", root, project_root=str(root)))
    assert [d["name"] for d in yaml.safe_load(spec.read_text())["deployments"]] == [deployment_name(project)]

    prefect_cli("work-pool", "create", WORK_POOL, "--type", "process", "--overwrite", env=env)
    prefect_cli("--no-prompt", "deploy", "--all", "--prefect-file", str(spec), env=env)  # from the checkout: code dir
    deployment = httpx.get(f"{api}/deployments/name/retrain-and-promote/{deployment_name(project)}").json()
    assert deployment["work_pool_name"] == WORK_POOL and deployment["schedules"][0]["schedule"]["cron"] == "0 3 * * 1"

    run = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json={}).json()
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL, "--type", "process"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 420
        while True:
            state = httpx.get(f"{api}/flow_runs/{run['id']}").json()["state"]["type"]
            if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") or time.monotonic() > deadline:
                break
            time.sleep(2)
    finally:
        log = stop_worker(worker)
    assert state == "COMPLETED", log[-4000:]
    # What the worker's run did: the pipeline registered a version under the deployment run (its root flow run),
    # in this test's experiment, and the gate decided on it: the first version of a fresh store is promoted.
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    mine = [
        v
        for v in client.search_model_versions(f"name = '{project}'")
        if client.get_run(v.run_id).data.tags.get("prefect.root_flow_run_id") == run["id"]
    ]
    assert len(mine) == 1, [v.version for v in mine]
    assert client.get_experiment(client.get_run(mine[0].run_id).info.experiment_id).name == experiment
    decision = client.get_model_version(project, mine[0].version).tags.get("promotion.decision")
    assert decision == "promoted", decision
    assert client.get_registered_model(project).aliases.get("champion") == mine[0].version


# The team stack (`dlfolio stack up`): real PostgreSQL, moto's S3, MLflow and Prefect servers and a worker.


def stack_env(state: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "AWS_"))}
    env.update(
        PYTHONPATH=str(REPO),
        NO_COLOR="1",
        DLFOLIO_STACK_DIR=str(state),
        # moto's venv is made once per checkout (pip), then reused offline by every stack
        DLFOLIO_MOTO_VENV=str(REPO / ".stack" / "moto-venv"),
    )
    return env


def stack_cli(env: dict, *args: str, cwd: Path = REPO, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def stack_processes(state: Path) -> list[str]:
    """Every process whose command line names the stack's state folder (its servers, data dir, logs)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if str(state) in command and stat != "Z":
                found.append(f"{proc.name}: {command[:160]}")
    return found


def stack_repo(root: Path, sample: Path, project: str) -> Path:
    """A git + DVC repository with one project's params.yaml (with a weekly schedule: a deployment in prefect.yaml)
    and its data under data/ (tracked by DVC)."""
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = {**params["projects"][project], "data_dir": f"data/{project}", "schedule": "0 3 * * 1"}
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump({"defaults": params.get("defaults", {}), "projects": {project: section}}))
    import shutil

    shutil.copytree(sample, root / "data" / project)
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"],
                    [sys.executable, "-m", "dvc", "add", "-q", "data"]):  # fmt: skip
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    (root / ".gitignore").write_text("/outputs/\n/mlruns/\n/data\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "data"], cwd=root, check=True)
    return root


def tree_digest(root: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.mark.team
def test_the_team_stack_runs_a_deployment_on_its_worker_and_shares_store_remote_and_promotion_lock(
    tmp_path, sample_data
):
    """`dlfolio stack up` on 127.0.0.1; a deployed retrain-and-promote executed by the stack's worker writes its
    run to PostgreSQL and its model to S3 and promotes it; DVC round-trips the data through the S3 remote into a
    fresh clone; two promotions from two checkouts that share only the servers are serialised by the Prefect
    global concurrency limit; `dlfolio stack down` leaves no process."""
    import hashlib
    import json as _json
    import shutil
    import tempfile
    import time

    import boto3
    import httpx
    import psycopg2
    from mlflow.tracking import MlflowClient

    from flows.locks import limit_name
    from flows.schedules import deployment_name, prefect_yaml

    project = "linear-regression"
    # Not under tmp_path: as root, PostgreSQL runs as user postgres, who cannot enter pytest's private folders.
    state = Path(tempfile.mkdtemp(prefix="dlfolio-stack-"))
    state.chmod(0o755)
    env = stack_env(state)
    repo = stack_repo(tmp_path / "repo", sample_data(project), project)
    try:
        up = stack_cli(env, "stack", "up", "--root", str(repo))
        assert up.returncode == 0, up.stderr[-3000:]
        exports = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines())
        assert set(exports) >= {"MLFLOW_TRACKING_URI", "PREFECT_API_URL", "MLFLOW_S3_ENDPOINT_URL",
                                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DLFOLIO_DVC_REMOTE"}  # fmt: skip
        assert all(
            v.startswith("http://127.0.0.1:") for k, v in exports.items() if k.endswith(("_URI", "_URL"))
        ), exports
        team = {**env, **exports}
        api, tracking = exports["PREFECT_API_URL"], exports["MLFLOW_TRACKING_URI"]
        again = stack_cli(env, "stack", "up", "--root", str(repo))  # idempotent: keeps everything, same addresses
        assert again.returncode == 0 and again.stdout == up.stdout, again.stderr[-2000:]
        assert "started" not in again.stderr, again.stderr

        # A deployment of retrain-and-promote on the stack's process pool, run by the stack's worker.
        spec = tmp_path / "prefect.yaml"
        spec.write_text(prefect_yaml("params.yaml", repo, project_root=str(repo)))
        prefect_cli("--no-prompt", "deploy", "--all", "--prefect-file", str(spec), env=team)
        deployment = httpx.get(f"{api}/deployments/name/retrain-and-promote/{deployment_name(project)}").json()
        run = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json={}).json()
        deadline = time.monotonic() + 300
        while (flow_run := httpx.get(f"{api}/flow_runs/{run['id']}").json())["state"]["type"] not in (
            "COMPLETED", "FAILED", "CRASHED", "CANCELLED"
        ) and time.monotonic() < deadline:  # fmt: skip
            time.sleep(1)
        worker_log = (state / "logs" / "worker.log").read_text(errors="replace")
        assert flow_run["state"]["type"] == "COMPLETED", worker_log[-4000:]
        assert flow_run["work_pool_name"] == "dlfolio"

        # The run, its params and metrics: in the tracking server's PostgreSQL database.
        client = MlflowClient(tracking)
        [version] = client.search_model_versions(f"name = '{project}'")
        mlflow_run = client.get_run(version.run_id)
        assert mlflow_run.data.tags["prefect.root_flow_run_id"] == run["id"]
        database = f"postgresql://dlfolio:dlfolio@127.0.0.1:{_json.loads((state / 'state.json').read_text())['ports']['postgres']}/mlflow"
        with psycopg2.connect(database) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT key, value FROM params WHERE run_uuid = %s", (version.run_id,))
            params = dict(cursor.fetchall())
            cursor.execute("SELECT key, value FROM latest_metrics WHERE run_uuid = %s", (version.run_id,))
            metrics = dict(cursor.fetchall())
        assert params["train.lr"] == "0.1" and params["train.epochs"] == "500", sorted(params)[:20]
        assert 0 < metrics["test_rmse"] < 5 and metrics["test_rmse"] == pytest.approx(mlflow_run.data.metrics["test_rmse"])
        # Its model in the S3 bucket (through MLflow's artifact proxy), byte for byte what the registry recorded.
        s3 = boto3.client("s3", endpoint_url=exports["MLFLOW_S3_ENDPOINT_URL"],
                          aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")  # fmt: skip
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="dlfolio", Prefix="mlflow/")["Contents"]]
        [predictor] = [k for k in keys if k.endswith("artifacts/predictor.joblib")]
        body = s3.get_object(Bucket="dlfolio", Key=predictor)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == version.tags["predictor.sha256"]
        # Registered, then promoted by the same deployment run (the first version: no champion before).
        model = client.get_registered_model(project)
        assert model.aliases == {"challenger": version.version, "champion": version.version}, model.aliases
        assert client.get_model_version(project, version.version).tags["promotion.decision"] == "promoted"

        # DVC: push through the S3 remote; a fresh clone pulls the same bytes.
        dvc = [sys.executable, "-m", "dvc"]
        pushed = subprocess.run([*dvc, "push", "-r", "stack"], cwd=repo, env=team, capture_output=True, text=True)
        assert pushed.returncode == 0, pushed.stderr[-2000:]
        assert any(k.startswith("dvc/") for k in (o["Key"] for o in s3.list_objects_v2(Bucket="dlfolio")["Contents"]))
        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
        assert not (clone / "data").exists()
        configured = stack_cli(env, "stack", "up", "--root", str(clone))  # running stack: only the clone's remote
        assert configured.returncode == 0 and "started" not in configured.stderr, configured.stderr[-2000:]
        pulled = subprocess.run([*dvc, "pull", "-r", "stack"], cwd=clone, env=team, capture_output=True, text=True)
        assert pulled.returncode == 0, pulled.stderr[-2000:]
        assert tree_digest(clone / "data") == tree_digest(repo / "data")

        # Two promotions at once from two checkouts that share only the servers. Two more versions of the same
        # model (its logged files, registered again: no retraining needed), each forced to champion with a reason.
        # Serialised, the second to decide must have seen the first's champion; racing, both would see version 1.
        registration = {k: v for k, v in version.tags.items() if not k.startswith("promotion.")}
        candidates = [
            client.create_model_version(
                project, version.source, version.run_id, tags=registration, model_id=version.source.removeprefix("models:/")
            ).version
            for _ in range(2)
        ]
        promotions = [
            subprocess.Popen(
                [sys.executable, "-m", "flows.cli", "promote", project, "--version", v, "--force", "--reason",
                 f"race {v}", "--root", str(root)],
                cwd=root, env=team, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            for v, root in zip(candidates, (repo, clone))
        ]
        outputs = [p.communicate(timeout=300) for p in promotions]
        assert [p.returncode for p in promotions] == [0, 0], [err[-2000:] for _, err in outputs]
        tags = {v: client.get_model_version(project, v).tags for v in candidates}
        assert {t["promotion.decision"] for t in tags.values()} == {"forced"}, tags
        seen = {v: t["promotion.champion_version"] for v, t in tags.items()}
        first = next(v for v in candidates if seen[v] == version.version)  # the one that decided first...
        second = next(v for v in candidates if v != first)
        assert seen[second] == first, seen  # ...and the other saw its result: serialised, not racing
        assert client.get_registered_model(project).aliases["champion"] == second
        limit = httpx.get(f"{api}/v2/concurrency_limits/{limit_name(project)}").json()
        assert limit["limit"] == 1 and limit["active_slots"] == 0, limit  # the shared lock, released
    finally:
        down = stack_cli(env, "stack", "down", timeout=180)
        left = stack_processes(state)
        shutil.rmtree(state, ignore_errors=True)
    assert down.returncode == 0, down.stderr[-2000:]
    assert left == [], left
    status = stack_cli(env, "stack", "status")
    assert status.returncode == 1 and "running" not in status.stdout.replace("not running", ""), status.stdout
