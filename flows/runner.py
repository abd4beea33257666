"""A warm runner for `dlfolio run`: the libraries imported once, each pipeline in a forked process.

Every `dvc repro` stage is a fresh `dlfolio run P`, and before its flow starts a process spends 6-7 s of CPU
importing torch, MLflow, Prefect, scikit-learn and Great Expectations (measured here: 11.5 s of CPU for
`dlfolio run linear-regression` in its own process, 4.4 s forked from a process that had imported them): about
three minutes of `make run`'s 28 stages. So `make run` starts this runner once (`dlfolio runner start`) and
exports ``DLFOLIO_RUNNER``; each `dlfolio run` then hands its command line, working directory, environment and
its stdin/stdout/stderr to the runner over a Unix socket, and the runner forks a process that runs it exactly as
`dlfolio run` would, writing straight to the caller's terminal or pipe. The caller waits for the exit status and
passes it on, so DVC sees the same command succeed or fail.

What makes the fork the same as a fresh process:
- Prefect reads its settings once, at import: the runner serves only callers whose Prefect settings (PREFECT_*
  with the same defaults applied, the project root's Prefect home and server) are the runner's own, and refuses
  the others, which then run in their own process as before. It also refuses once its Prefect server is gone.
- It refuses too once a source file of dlfolio it imported has changed, so an edit is never run stale.
- Nothing in the runner computes with torch before forking (a used OpenMP pool does not survive a fork).
- The caller's signals reach the pipeline: SIGINT/SIGTERM/SIGHUP are forwarded to it, and if the caller dies
  (even by SIGKILL) the pipeline notices its socket close and is killed too, as it would have died with it.
- ``random`` reseeds itself in a forked child; the pipelines seed numpy and torch themselves.

Nothing at module level imports more than the standard library: the caller's side (``delegate``) runs in every
`dlfolio run` before anything heavy is loaded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

SOCKET_ENV = "DLFOLIO_RUNNER"
STATE_DIR = ".dlfolio"
SOCKET_NAME, PID_NAME, LOG_NAME = "runner.sock", "runner.pid", "runner.log"
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def socket_path(root: Path) -> Path:
    return root / STATE_DIR / SOCKET_NAME


# --- the caller: `dlfolio run` -------------------------------------------------------------------------------


def delegate(argv: list[str], path: str) -> int | None:
    """Run ``dlfolio ARGV`` in the runner at ``path``; its exit status, or None if the runner is not there or
    refuses (the caller then runs the command itself)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        socket.send_fds(sock, [b"F"], [0, 1, 2])
        request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
        sock.sendall(json.dumps(request).encode() + b"\n")
        replies = sock.makefile("r", encoding="utf-8")
        first = replies.readline().split(" ", 1)
    except OSError as exc:
        print(
            f"dlfolio: the runner at {path} did not answer ({exc.strerror}); running in this process", file=sys.stderr
        )
        sock.close()
        return None
    if first[0] != "pid":  # "refused <why>": this caller's settings are not the runner's
        sock.close()
        return None
    pid = int(first[1])

    def forward(signum, _frame) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    # The socket stays open until the end: the pipeline takes its closing for the caller's death.
    last = replies.readline().split()
    return int(last[1]) if len(last) == 2 and last[0] == "exit" else 1


# --- the runner ------------------------------------------------------------------------------------------------


def prefect_settings(env: dict[str, str], cwd: str) -> dict[str, str]:
    """What a `dlfolio` process with ``env`` in ``cwd`` imports Prefect with (its ``flows`` import has applied
    flows/__init__.py's defaults), less the server URL, which ``ensure_server`` derives from the Prefect home."""
    settings = {k: v for k, v in env.items() if k.startswith("PREFECT_") or k == "DO_NOT_TRACK"}
    settings.pop("PREFECT_API_URL", None)
    if "PREFECT_HOME" in settings:
        settings["PREFECT_HOME"] = str(Path(cwd, settings["PREFECT_HOME"]).resolve())
    return dict(sorted(settings.items()))


def source_stamps() -> dict[str, int]:
    """Modification time of every imported module of dlfolio's own code (components/, flows/)."""
    code = Path(__file__).resolve().parents[1]
    stamps = {}
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and file.startswith(str(code)) and "site-packages" not in file:
            try:
                stamps[file] = os.stat(file).st_mtime_ns
            except OSError:
                stamps[file] = -1
    return stamps


class Runner:
    def __init__(self, root: Path):
        self.root = root.resolve()
        self.settings = prefect_settings(dict(os.environ), str(self.root))
        self.api_url = ""
        self.own_server = not os.environ.get("PREFECT_API_URL")  # the local server `ensure_server` starts

    def warm(self) -> None:
        """Point Prefect at the project's server, then import what every pipeline imports (no computation)."""
        from flows.cli import use_prefect

        use_prefect()
        self.api_url = os.environ["PREFECT_API_URL"]
        import great_expectations  # noqa: F401
        import mapie  # noqa: F401
        import matplotlib.pyplot  # noqa: F401
        import torchvision  # noqa: F401

        import flows.pipeline  # noqa: F401  (torch, MLflow, Prefect, scikit-learn, modAL, the components)

        self.sources = source_stamps()

    def stale(self) -> list[str]:
        """dlfolio's source files changed since the runner imported them: a fork would run the old code."""
        now = source_stamps()
        return sorted(path for path, stamp in self.sources.items() if now.get(path) != stamp)

    def refusal(self, request: dict) -> str | None:
        """Why this runner cannot run ``request`` as its own process would (None: it can)."""
        env, cwd = request["env"], request["cwd"]
        if prefect_settings(env, cwd) != self.settings:
            return "its Prefect settings differ from the runner's"
        if env.get("PREFECT_API_URL", self.api_url) != self.api_url:
            return "it names another Prefect server"
        if changed := self.stale():
            return f"{changed[0]} changed since the runner started (`dlfolio runner stop` and start it again)"
        if self.own_server:
            from flows.server import find_server

            server = find_server(Path(self.settings["PREFECT_HOME"]))
            if server is None or server.api_url != self.api_url:
                return "the runner's Prefect server is gone"
        return None

    def serve(self) -> None:
        state = self.root / STATE_DIR
        state.mkdir(exist_ok=True)
        path = state / SOCKET_NAME
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(16)
        (state / PID_NAME).write_text(str(os.getpid()))

        def stop(_signum, _frame) -> None:
            path.unlink(missing_ok=True)
            (state / PID_NAME).unlink(missing_ok=True)
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the per-request processes reap themselves
        print(f"runner ready on {path} (pid {os.getpid()})", flush=True)
        while True:
            conn, _ = listener.accept()
            try:
                self.answer(conn, listener)
            except Exception as exc:  # a caller that hung up mid-request must not stop the runner
                print(f"request failed: {exc!r}", flush=True)
            finally:
                conn.close()

    def answer(self, conn: socket.socket, listener: socket.socket) -> None:
        message, fds, _, _ = socket.recv_fds(conn, 1, 3)
        if not message:  # `find_runner`'s probe: connected, then hung up
            return
        try:
            request = json.loads(conn.makefile("r", encoding="utf-8").readline())
            reason = self.refusal(request)
            if reason:
                conn.sendall(f"refused {reason}\n".encode())
                print(f"refused {request['argv']}: {reason}", flush=True)
                return
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fork() == 0:  # one process per request: it forks the pipeline, waits, reports its status
                listener.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                pid = os.fork()
                if pid == 0:
                    self.run(conn, fds, request)  # never returns
                conn.sendall(f"pid {pid}\n".encode())
                _, status = os.waitpid(pid, 0)
                code = os.waitstatus_to_exitcode(status)
                try:
                    conn.sendall(f"exit {code if code >= 0 else 128 - code}\n".encode())
                finally:
                    os._exit(0)
            print(f"started {request['argv']}", flush=True)
        finally:
            for fd in fds:
                os.close(fd)

    def run(self, conn: socket.socket, fds: list[int], request: dict) -> None:
        """In the forked pipeline process: become the caller's `dlfolio` and run its command."""
        import atexit
        import logging
        import threading

        for signum in (*FORWARDED, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        # The runner's stdout was its log file; a caller on a terminal sees lines as they come, as it would.
        sys.stdout.reconfigure(line_buffering=os.isatty(1))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(SOCKET_ENV, None)
        os.environ["PREFECT_API_URL"] = self.api_url
        sys.argv = ["dlfolio", *request["argv"]]

        def die_with_the_caller() -> None:
            while conn.recv(1):
                pass
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=die_with_the_caller, name="runner-caller-watch", daemon=True).start()
        from flows.cli import main

        try:
            code = main(request["argv"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 130 if isinstance(sys.exc_info()[1], KeyboardInterrupt) else 1
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)


# --- start / stop (`dlfolio runner`) ---------------------------------------------------------------------------


def find_runner(root: Path) -> int | None:
    """The pid of the runner serving ``root``, if one answers on its socket."""
    state = root.resolve() / STATE_DIR
    try:
        pid = int((state / PID_NAME).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(state / SOCKET_NAME))
    except OSError:
        return None
    finally:
        probe.close()
    return pid


def start_runner(root: Path, timeout: float = 300.0) -> tuple[int, bool]:
    """(pid, started now): the runner for ``root``, started in the background if none runs."""
    import subprocess

    from components.errors import DlfolioError

    root = root.resolve()
    pid = find_runner(root)
    if pid is not None:
        return pid, False
    state = root / STATE_DIR
    state.mkdir(exist_ok=True)
    log = state / LOG_NAME
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.runner", str(root)],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal goes to the pipelines, not to the runner
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DlfolioError(f"the runner exited with status {process.returncode}; see {log}")
        pid = find_runner(root)
        if pid is not None:
            return pid, True
        time.sleep(0.2)
    process.terminate()
    raise DlfolioError(f"the runner did not come up within {timeout:.0f} s; see {log}")


def stop_runner(root: Path) -> int | None:
    """Stop the runner for ``root``; its pid, or None if none ran. Pipelines it started run on to their end."""
    pid = find_runner(root)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    return pid


if __name__ == "__main__":
    runner = Runner(Path(sys.argv[1]))
    os.chdir(runner.root)
    runner.warm()
    runner.serve()
