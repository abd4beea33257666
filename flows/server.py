"""One local Prefect server shared by every `dlfolio` command, instead of a temporary one per process.

Without ``PREFECT_API_URL`` a Prefect flow starts a temporary server for its process: 15-17 s per
`dlfolio run` on this 2-core machine, 25 times in a `dvc repro`, and its runs vanish with it. Here the first
command that runs a flow starts `prefect server start` in the background, in the shared ``PREFECT_HOME``
(``.prefect/``, also what `prefect.toml` gives a plain `prefect server start` in the repository root), with its
UI; later commands find it through ``PREFECT_HOME/dlfolio-server.json`` (pid, port) and a health check, so
every stage of a `dvc repro` reuses it and its UI shows every run. `dlfolio server stop` (and `make run`, at
the end) stops it. A ``PREFECT_API_URL`` set in the environment (a team's server) always wins.

Nothing here imports Prefect: `ensure_server` must set ``PREFECT_API_URL`` before Prefect is first imported,
because Prefect reads its settings once, at import.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from components.errors import DlfolioError
from flows.processes import free_port, terminate_group

STATE_FILE = "dlfolio-server.json"
LOG_FILE = "dlfolio-server.log"
# Prefect's own default (PREFECT_SERVER_API_PORT changes it, as for `prefect server start`), so the UI is where
# Prefect's docs say it is; when the port is taken, any free one.
DEFAULT_PORT = 4200
# Set beside PREFECT_API_URL when that URL is the server ensure_server started here (inherited by subprocesses,
# such as a stage's `dlfolio run`), so a team's server can be told from this host's own.
LOCAL_API_ENV = "DLFOLIO_LOCAL_PREFECT_API_URL"


class ServerStartError(DlfolioError, RuntimeError):
    """The background Prefect server did not come up; the message holds the end of its log."""


@dataclass(frozen=True)
class Server:
    pid: int
    port: int
    home: str

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def prefect_home() -> Path:
    """The shared home: ``PREFECT_HOME`` (flows/__init__.py defaults it to ./.prefect)."""
    import flows  # noqa: F401  (sets the default PREFECT_HOME)

    return Path(os.environ["PREFECT_HOME"]).expanduser().resolve()


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect API answers its health check at ``api_url``."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as response:
            return response.status == 200 and response.read().strip() == b"true"
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process reuses the pid: not ours
        return False
    return True


def find_server(home: Path | None = None) -> Server | None:
    """The dlfolio-started server of ``home`` if it runs and answers; a stale state file is removed."""
    home = home or prefect_home()
    state = home / STATE_FILE
    try:
        server = Server(**json.loads(state.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if _alive(server.pid) and healthy(server.api_url):
        return server
    if not _alive(server.pid):
        state.unlink(missing_ok=True)
    return None


@contextmanager
def _lock(home: Path):
    """Serialises find-or-start, so stages run in parallel (`dvc exp run -j`) start one server, not several."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "dlfolio-server.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _free_port(preferred: int) -> int:
    if (port := free_port(preferred)) is None:
        raise ServerStartError("no free TCP port on 127.0.0.1 for the Prefect server")
    return port


def start_server(
    home: Path | None = None, port: int | None = None, timeout: float | None = None
) -> tuple[Server, bool]:
    """Find the home's running server or start one; returns (server, whether this call started it)."""
    home = home or prefect_home()
    with _lock(home):
        running = find_server(home)
        if running is not None:
            return running, False
        port = _free_port(port or int(os.environ.get("PREFECT_SERVER_API_PORT") or DEFAULT_PORT))
        env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_UI_ENABLED")}
        env["PREFECT_HOME"] = str(home)
        log = open(home / LOG_FILE, "ab")
        # Its own session: it outlives this command (that is the point), and `stop` ends its whole group
        # (the API and its services) by this one id.
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ui",
                "--analytics-off",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        server = Server(pid=process.pid, port=port, home=str(home))
        # A fresh SQLite database runs its migrations first: ~20 s here, so the same limit as the ephemeral server.
        limit = timeout or float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"))
        deadline = time.monotonic() + limit
        while not healthy(server.api_url):
            if process.poll() is not None or time.monotonic() > deadline:
                if process.poll() is None:
                    terminate_group(process.pid)
                tail = (home / LOG_FILE).read_text(errors="replace").splitlines()[-15:]
                raise ServerStartError(
                    f"the Prefect server did not start on port {port} within {limit:.0f} s; "
                    f"the end of {home / LOG_FILE}:\n" + "\n".join(tail)
                )
            time.sleep(0.3)
        (home / STATE_FILE).write_text(json.dumps(asdict(server)))
        return server, True


def stop_server(home: Path | None = None) -> Server | None:
    """Stop the home's dlfolio-started server; returns it, or None if none was running."""
    home = home or prefect_home()
    with _lock(home):
        state = home / STATE_FILE
        try:
            server = Server(**json.loads(state.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if _alive(server.pid):
            terminate_group(server.pid)
        state.unlink(missing_ok=True)
        return server


def ensure_server() -> str:
    """Point this process's Prefect at a long-lived server; call before Prefect is imported. Returns the API URL.

    ``PREFECT_API_URL`` from the environment wins. If Prefect is already imported (a test harness, a notebook),
    its own settings are kept, whatever they say: it would not see a URL set now.
    """
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if "prefect.settings" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or ""
    server, _ = start_server()
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ[LOCAL_API_ENV] = server.api_url  # this host's own server, not a team's (flows/locks.py)
    return server.api_url
