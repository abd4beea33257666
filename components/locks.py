"""Advisory locks between dlfolio processes: an exclusive ``fcntl.flock`` on a lock file that records its holder.

Two runs of one project, or two label imports, each hold the lock for the whole of their read-modify-write.
The kernel drops a ``flock`` when its process ends, however it ends (kill -9 included), so a crash never leaves
a stale lock behind; the pid and start time written into the file only serve the message the next process
prints ("pid 123, since 2026-12-02T03:00:00Z"). ``flock`` locks belong to an open file, so two threads of one
process that each open the file exclude each other too. Local file systems only (NFS may not honour flock).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from components.errors import BusyError, NotWritableError

NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)  # a read-only directory, or a read-only mount


class FileLock:
    """``with FileLock(path, busy=...)``: hold ``path`` exclusively, or raise ``BusyError(busy(holder))``.

    ``wait`` seconds (0: fail at once) are spent polling; ``on_wait(holder)`` is called once when the lock is
    found taken and the caller will wait (to say so). ``holder`` is the dict the holder wrote: pid, host, since.
    """

    def __init__(
        self,
        path: Path,
        busy: Callable[[dict], str],
        wait: float = 0.0,
        on_wait: Callable[[dict], None] | None = None,
        poll: float = 0.05,
    ):
        self.path, self.busy, self.wait, self.on_wait, self.poll = Path(path), busy, wait, on_wait, poll
        self._file: IO[str] | None = None

    def acquire(self) -> FileLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            file = open(self.path, "a+")  # noqa: SIM115 (held until release); "a+": never truncates the holder's record
        except OSError as exc:
            if exc.errno not in NOT_WRITABLE:
                raise
            raise NotWritableError(
                f"{self.path.parent}: cannot write there ({exc.strerror}: {exc.filename}); make it writable"
            ) from None
        deadline = time.monotonic() + self.wait
        told = False
        while True:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = read_holder(self.path)
                if time.monotonic() >= deadline:
                    file.close()
                    raise BusyError(self.busy(holder)) from None
                if not told and self.on_wait is not None:
                    self.on_wait(holder)
                    told = True
                time.sleep(self.poll)
        file.seek(0)
        file.truncate()
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
        file.write(json.dumps(record) + "\n")
        file.flush()
        self._file = file
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def project_run_lock(outputs_root: Path, project: str) -> FileLock:
    """One pipeline run of ``project`` per outputs directory (``components.tracking.outputs.RunOutputs``)."""
    return FileLock(
        Path(outputs_root) / ".locks" / f"{project}.lock",
        busy=lambda h: (
            f"project {project} is already running (pid {h['pid']}, since {h['since']}); "
            "wait for it to finish or stop it"
        ),
    )


def read_holder(path: Path) -> dict:
    """What the lock's holder wrote (pid, host, since); '?' for a field not written yet."""
    try:
        record = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        record = {}
    return {"pid": record.get("pid", "?"), "host": record.get("host", "?"), "since": record.get("since", "?")}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
