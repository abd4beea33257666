"""Process-group and port helpers shared by the servers dlfolio starts (flows/server.py, flows/stack.py)."""

from __future__ import annotations

import os
import signal
import socket
import time


def terminate_group(pid: int, grace: float = 20.0) -> None:
    """SIGTERM the process group led by ``pid``, wait up to ``grace`` seconds, then SIGKILL what is left.
    A leader that is our own child is reaped, so a start and a stop in one process leave no zombie."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def free_port(preferred: int) -> int | None:
    """``preferred`` if it is free on 127.0.0.1, else a port the OS picks; None when neither binds.
    SO_REUSEADDR as the servers bind: a port in TIME_WAIT is free to them."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    return None
