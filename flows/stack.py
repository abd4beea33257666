"""A team's stack on one machine, all on 127.0.0.1: what `dlfolio stack up|down|status` starts and stops.

    postgres   PostgreSQL (Debian's initdb/pg_ctl): MLflow's backend store (database mlflow) and Prefect's (prefect)
    s3         moto's S3 server, from its own venv (moto and dvc-s3 disagree on botocore): MLflow's artifact store
               (bucket dlfolio, prefix mlflow/) and the DVC remote `stack` (prefix dvc/)
    mlflow     `mlflow server` on PostgreSQL, proxying artifacts to s3://dlfolio/mlflow (clients need no S3 access)
    prefect    `prefect server start` on PostgreSQL, with the process work pool `dlfolio`
    worker     one `prefect worker start --pool dlfolio` in the checkout, with the stack's environment

State (data, pids, ports, logs) lives in ``.stack/`` (git-ignored; ``DLFOLIO_STACK_DIR`` moves it). ``up`` keeps
what already runs and answers, starts the rest, and prints the environment to export; ``down`` stops every
process it started (each in its own session, ended by its process group) and leaves the data. moto keeps S3 in
memory: what MLflow and DVC stored there is gone after ``down`` (MinIO in docker-compose.yml keeps it).

Nothing here imports Prefect, MLflow or boto3 at module level: `dlfolio stack --help` stays fast.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from components.errors import DlfolioError
from flows.processes import free_port, terminate_group

PG_BIN = Path(os.environ.get("DLFOLIO_PG_BIN", "/usr/lib/postgresql/15/bin"))
MOTO_SPEC = "moto[server]==5.2.5"  # its own venv: moto's botocore is not dvc-s3's (aiobotocore pins it)
USER, PASSWORD = "dlfolio", "dlfolio"  # local-only test credentials, the same as docker-compose.yml's
AWS_KEY, AWS_SECRET, AWS_REGION = "dlfolio", "dlfolio-secret", "us-east-1"  # MinIO wants a secret of 8+
BUCKET = "dlfolio"
WORK_POOL = "dlfolio"
DVC_REMOTE = "stack"
# Preferred ports (any free one if taken): off the defaults of a local PostgreSQL, `dlfolio ui` (5000) and
# `dlfolio server` (4200), so the stack and the single-host defaults can run side by side.
PORTS = {"postgres": 55432, "s3": 59000, "mlflow": 55000, "prefect": 54200}
SERVICES = ("postgres", "s3", "mlflow", "prefect", "worker")


class StackError(DlfolioError, RuntimeError):
    """A stack service did not come up; the message names it and its log file."""


def stack_dir(root: Path | None = None) -> Path:
    if os.environ.get("DLFOLIO_STACK_DIR"):
        return Path(os.environ["DLFOLIO_STACK_DIR"]).expanduser().resolve()
    return (root or Path.cwd()).resolve() / ".stack"


@dataclass
class Stack:
    """Ports and pids of the running services, persisted in ``state.json``."""

    dir: Path
    root: Path
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path, root: Path) -> Stack:
        try:
            state = json.loads((directory / "state.json").read_text())
        except (OSError, ValueError):
            state = {}
        return cls(directory, root, dict(state.get("ports", {})), dict(state.get("pids", {})))

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "state.json").write_text(json.dumps({"ports": self.ports, "pids": self.pids}, indent=2))

    def log(self, service: str) -> Path:
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        return self.dir / "logs" / f"{service}.log"

    # addresses
    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def database_url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{USER}:{PASSWORD}@127.0.0.1:{self.ports['postgres']}/{database}"

    @property
    def prefect_api(self) -> str:
        return f"{self.url('prefect')}/api"

    def exports(self) -> dict[str, str]:
        """What a shell (or a test) sets to use the stack: `make run`, `dlfolio ...`, `dvc push -r stack`."""
        return {
            "MLFLOW_TRACKING_URI": self.url("mlflow"),
            "PREFECT_API_URL": self.prefect_api,
            "MLFLOW_S3_ENDPOINT_URL": self.url("s3"),
            "AWS_ENDPOINT_URL": self.url("s3"),
            "AWS_ACCESS_KEY_ID": AWS_KEY,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_DEFAULT_REGION": AWS_REGION,
            "DLFOLIO_DVC_REMOTE": DVC_REMOTE,
        }


# processes ---------------------------------------------------------------------------------------------------


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie child of this process (a `stack up` then `down` in one process) is not alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _free_port(preferred: int) -> int:
    if (port := free_port(preferred)) is None:
        raise StackError("no free TCP port on 127.0.0.1")
    return port


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (OSError, urllib.error.URLError):
        return False


def _wait(service: str, check, process: subprocess.Popen | None, log: Path, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
            why = "exited" if process is not None and process.poll() is not None else f"not ready within {limit:.0f} s"
            raise StackError(f"stack: {service} did not come up ({why}); see {log}{_last_line(log)}")
        time.sleep(0.3)


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.exists() else []
    return f" (last line: {lines[-1][:300]})" if lines else ""


def _spawn(stack: Stack, service: str, command: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
    log = open(stack.log(service), "ab")  # noqa: SIM115 (the child holds it)
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kw
    )
    log.close()
    stack.pids[service] = process.pid
    stack.save()
    return process


def _base_env(stack: Stack) -> dict[str, str]:
    """The services' environment: ours without Prefect/MLflow/AWS settings, plus the stack's S3 credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID=AWS_KEY, AWS_SECRET_ACCESS_KEY=AWS_SECRET, AWS_DEFAULT_REGION=AWS_REGION)
    env["NO_COLOR"] = "1"
    if "s3" in stack.ports:
        env["MLFLOW_S3_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL"] = stack.url("s3")
    return env


# postgres ----------------------------------------------------------------------------------------------------


def _as_postgres() -> dict:
    """initdb and postgres refuse to run as root: as root, run them as Debian's `postgres` user."""
    return {"user": "postgres"} if os.geteuid() == 0 else {}


def _pg_ready(stack: Stack) -> bool:
    done = subprocess.run(
        [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(stack.ports["postgres"])], capture_output=True
    )
    return done.returncode == 0


def _postgres_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _check_reachable_by_postgres(directory: Path) -> None:
    """As root, the server runs as `postgres`, which must be able to enter every folder above its data."""
    import pwd

    uid = pwd.getpwnam("postgres").pw_uid
    for folder in [directory, *directory.parents]:
        info = folder.stat()
        if not (info.st_mode & 0o001 or info.st_uid == uid):
            raise StackError(
                f"stack: postgres did not come up: user postgres cannot enter {folder} (mode "
                f"{info.st_mode & 0o777:o}); put the stack elsewhere (DLFOLIO_STACK_DIR) or `chmod o+x {folder}`"
            )


def start_postgres(stack: Stack) -> None:
    data, log = stack.dir / "postgres", stack.log("postgres")
    if not (PG_BIN / "initdb").exists():
        raise StackError(f"stack: postgres did not come up: no {PG_BIN / 'initdb'} (apt-get install postgresql-15)")
    if os.geteuid() == 0:
        _check_reachable_by_postgres(stack.dir)
    if not (data / "PG_VERSION").exists():
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        secret = stack.dir / "pg-password"
        secret.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(data, "postgres")
            shutil.chown(secret, "postgres")
            log.touch()
            shutil.chown(log, "postgres")
        done = subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={secret}", "--auth=scram-sha-256",
             "-E", "UTF8", "--no-instructions"],
            capture_output=True, text=True, **_as_postgres(),
        )  # fmt: skip
        secret.unlink()
        if done.returncode != 0:
            log.write_text(done.stdout + done.stderr)
            raise StackError(f"stack: postgres did not come up (initdb failed); see {log}{_last_line(log)}")
    elif os.geteuid() == 0 and not log.exists():
        log.touch()
        shutil.chown(log, "postgres")
    stack.ports["postgres"] = _free_port(PORTS["postgres"])
    options = f"-c listen_addresses=127.0.0.1 -p {stack.ports['postgres']} -c unix_socket_directories=''"
    done = subprocess.run(
        [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
        capture_output=True, text=True, start_new_session=True, **_as_postgres(),
    )  # fmt: skip
    if done.returncode != 0 or not _pg_ready(stack):
        raise StackError(f"stack: postgres did not come up (pg_ctl start failed); see {log}{_last_line(log)}")
    stack.pids["postgres"] = _postgres_pid(data) or 0
    stack.save()
    import psycopg2

    connection = psycopg2.connect(stack.database_url("postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        for database in ("mlflow", "prefect"):
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{database}"')
    connection.close()


def stop_postgres(stack: Stack) -> None:
    data = stack.dir / "postgres"
    if _postgres_pid(data) and _alive(_postgres_pid(data)):
        subprocess.run(
            [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"],
            capture_output=True, **_as_postgres(),
        )  # fmt: skip


# s3 (moto) ---------------------------------------------------------------------------------------------------


def moto_venv(stack: Stack) -> Path:
    """moto's own venv (``.stack/moto-venv``), created on first use (pip needs the package index then, not after)."""
    venv = Path(os.environ.get("DLFOLIO_MOTO_VENV") or stack.dir / "moto-venv")
    server = venv / "bin" / "moto_server"
    if not server.exists():
        log = stack.log("s3")
        with open(log, "ab") as out:
            base = getattr(sys, "_base_executable", None) or sys.executable  # the interpreter under our venv
            made = subprocess.run([base, "-m", "venv", str(venv)], stdout=out, stderr=subprocess.STDOUT)
            made = made.returncode == 0 and subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", MOTO_SPEC], stdout=out, stderr=subprocess.STDOUT
            ).returncode == 0
        if not made or not server.exists():
            raise StackError(f"stack: s3 did not come up: could not install {MOTO_SPEC} into {venv}; see {log}")
    return server


def s3_client(stack: Stack):
    import boto3

    return boto3.client(
        "s3", endpoint_url=stack.url("s3"), aws_access_key_id=AWS_KEY, aws_secret_access_key=AWS_SECRET,
        region_name=AWS_REGION,
    )  # fmt: skip


def start_s3(stack: Stack) -> None:
    server = moto_venv(stack)
    stack.ports["s3"] = _free_port(PORTS["s3"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    process = _spawn(stack, "s3", [str(server), "-H", "127.0.0.1", "-p", str(stack.ports["s3"])], env)
    _wait("s3", lambda: _http_ok(f"{stack.url('s3')}/moto-api/"), process, stack.log("s3"), 60)
    client = s3_client(stack)
    if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=BUCKET)


# mlflow ------------------------------------------------------------------------------------------------------


def start_mlflow(stack: Stack) -> None:
    stack.ports["mlflow"] = _free_port(PORTS["mlflow"])
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(stack.ports["mlflow"]),
        "--backend-store-uri", stack.database_url("mlflow"), "--artifacts-destination", f"s3://{BUCKET}/mlflow",
        "--workers", "1",
    ]  # fmt: skip
    # No job runner: its ~7 huey consumers (~240 MB each) serve GenAI evaluation jobs this project never submits.
    env = {**_base_env(stack), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = _spawn(stack, "mlflow", command, env, cwd=stack.dir)
    # A fresh database runs MLflow's migrations first (~20-40 s on 2 loaded cores).
    _wait("mlflow", lambda: _http_ok(f"{stack.url('mlflow')}/health"), process, stack.log("mlflow"), 180)


# prefect -----------------------------------------------------------------------------------------------------


def _prefect_env(stack: Stack) -> dict[str, str]:
    env = _base_env(stack)
    env.update(
        PREFECT_HOME=str(stack.dir / "prefect"),
        PREFECT_API_DATABASE_CONNECTION_URL=stack.database_url("prefect", "postgresql+asyncpg"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    return env


def start_prefect(stack: Stack) -> None:
    stack.ports["prefect"] = _free_port(PORTS["prefect"])
    env = _prefect_env(stack)
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
               "--port", str(stack.ports["prefect"]), "--ui", "--analytics-off"]  # fmt: skip
    process = _spawn(stack, "prefect", command, env, cwd=stack.dir)
    _wait("prefect", lambda: _http_ok(f"{stack.prefect_api}/health"), process, stack.log("prefect"), 180)


def _api(stack: Stack, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    request = urllib.request.Request(
        f"{stack.prefect_api}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None


def ensure_work_pool(stack: Stack) -> None:
    status, _ = _api(stack, "GET", f"/work_pools/{WORK_POOL}")
    if status == 200:
        return
    env = {**_prefect_env(stack), "PREFECT_API_URL": stack.prefect_api}
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"],
        env=env, capture_output=True, text=True, cwd=stack.root,
    )  # fmt: skip
    if done.returncode != 0:
        stack.log("worker").open("a").write(done.stdout + done.stderr)
        raise StackError(f"stack: worker did not come up (work pool {WORK_POOL!r} not created); see {stack.log('worker')}")


def workers_online(stack: Stack) -> list[str]:
    status, workers = _api(stack, "POST", f"/work_pools/{WORK_POOL}/workers/filter", {})
    return [w["name"] for w in workers or [] if w.get("status") == "ONLINE"] if status == 200 else []


def start_worker(stack: Stack) -> None:
    ensure_work_pool(stack)
    env = {**_prefect_env(stack), "PREFECT_API_URL": stack.prefect_api, "MLFLOW_TRACKING_URI": stack.url("mlflow")}
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL")  # a client, not the server
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(stack.root), os.environ.get("PYTHONPATH")) if p)
    env["PREFECT_WORKER_HEARTBEAT_SECONDS"] = "5"
    name = f"stack-{socket.gethostname()}"
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL, "--type", "process",
               "--name", name]  # fmt: skip
    process = _spawn(stack, "worker", command, env, cwd=stack.root)
    _wait("worker", lambda: name in workers_online(stack), process, stack.log("worker"), 120)


# the stack ---------------------------------------------------------------------------------------------------


def healthy(stack: Stack, service: str) -> bool:
    if service not in stack.ports and service != "worker":
        return False
    if service == "postgres":
        return _alive(_postgres_pid(stack.dir / "postgres")) and _pg_ready(stack)
    if not _alive(stack.pids.get(service)):
        return False
    if service == "s3":
        return _http_ok(f"{stack.url('s3')}/moto-api/")
    if service == "mlflow":
        return _http_ok(f"{stack.url('mlflow')}/health")
    if service == "prefect":
        return _http_ok(f"{stack.prefect_api}/health")
    return "prefect" in stack.ports and bool(workers_online(stack))


STARTERS = {"postgres": start_postgres, "s3": start_s3, "mlflow": start_mlflow, "prefect": start_prefect,
            "worker": start_worker}  # fmt: skip
# What a restart of each service forces on those after it: MLflow and Prefect hold connections to PostgreSQL,
# MLflow's artifacts live in S3 (a restarted moto is empty: its bucket is made again), the worker talks to Prefect.
DEPENDS = {"mlflow": ("postgres", "s3"), "prefect": ("postgres",), "worker": ("prefect", "mlflow")}


def up(root: Path, say=print) -> Stack:
    """Start what is not running (in order), keep what is; returns the stack with its addresses."""
    stack = Stack.load(stack_dir(root), root.resolve())
    stack.dir.mkdir(parents=True, exist_ok=True)
    restarted: set[str] = set()
    for service in SERVICES:
        if healthy(stack, service) and not restarted.intersection(DEPENDS.get(service, ())):
            say(f"{service}: running ({_where(stack, service)})")
            continue
        _stop(stack, service)
        started = time.monotonic()
        STARTERS[service](stack)
        restarted.add(service)
        say(f"{service}: started in {time.monotonic() - started:.0f} s ({_where(stack, service)})")
    configure_dvc_remote(stack, say)
    return stack


def _where(stack: Stack, service: str) -> str:
    if service == "postgres":
        return f"127.0.0.1:{stack.ports['postgres']}, log {stack.log('postgres')}"
    if service == "worker":
        return f"pool {WORK_POOL}, log {stack.log('worker')}"
    return f"{stack.url(service)}, log {stack.log(service)}"


def configure_dvc_remote(stack: Stack, say=print) -> None:
    """The DVC remote `stack` (s3://dlfolio/dvc on the stack's endpoint) in .dvc/config.local, if root is a DVC
    repository: local settings, so the committed .dvc/config keeps its default remote."""
    if not (stack.root / ".dvc").is_dir():
        return
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    for args in (
        ["remote", "add", "--local", "--force", DVC_REMOTE, f"s3://{BUCKET}/dvc"],
        ["remote", "modify", "--local", DVC_REMOTE, "endpointurl", stack.url("s3")],
    ):
        done = subprocess.run([dvc, *args], cwd=stack.root, capture_output=True, text=True)
        if done.returncode != 0:
            raise StackError(f"stack: dvc remote {DVC_REMOTE!r} not configured: {done.stderr.strip()[-500:]}")
    say(f"dvc remote: {DVC_REMOTE} -> s3://{BUCKET}/dvc (.dvc/config.local; `dvc push -r {DVC_REMOTE}`)")


def _stop(stack: Stack, service: str) -> None:
    if service == "postgres":
        stop_postgres(stack)
    elif stack.pids.get(service):
        terminate_group(stack.pids[service])
    stack.pids.pop(service, None)
    stack.save()


def down(root: Path, say=print) -> list[str]:
    """Stop every service of the stack (the worker first); returns the names of those that were running."""
    stack = Stack.load(stack_dir(root), root.resolve())
    stopped = []
    for service in reversed(SERVICES):
        running = (
            _alive(_postgres_pid(stack.dir / "postgres")) if service == "postgres" else _alive(stack.pids.get(service))
        )
        started = time.monotonic()
        _stop(stack, service)
        if running:
            stopped.append(service)
            say(f"{service}: stopped in {time.monotonic() - started:.1f} s")
    return stopped


def status(root: Path) -> dict[str, bool]:
    stack = Stack.load(stack_dir(root), root.resolve())
    return {service: healthy(stack, service) for service in SERVICES}
