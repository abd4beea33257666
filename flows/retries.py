"""Retries of the tasks that talk to the tracking server or the object store, on transient I/O errors only.

A team's MLflow server restarting, or its object store briefly unreachable, should not fail a two-hour
pipeline at its last step. The tasks that write there (register, evaluate's report artifacts, the promotion
gate) retry with backoff when the error is a connection-type one: refused, reset, timed out, or a server
that kept answering 5xx. A validation error, a missing version or a bug fails at once (retrying would only
repeat it). MLflow's client already retries each HTTP request a few times; these retries add task-level
backoff (``DELAYS``) on top, for an outage of up to about a minute.

Each retry re-runs the whole task: register may then log a second model whose first upload the outage broke;
the registry keeps the version that the successful attempt created.
"""

from __future__ import annotations

from typing import Any

DELAYS = [5, 20, 45]  # seconds before retries 1, 2 and 3


def _transient_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import requests

        types += [requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError]
    except ImportError:  # pragma: no cover (a dependency of MLflow)
        pass
    try:
        import urllib3

        types += [urllib3.exceptions.MaxRetryError, urllib3.exceptions.ProtocolError, urllib3.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover
        pass
    try:
        import botocore.exceptions

        types += [botocore.exceptions.ConnectionError, botocore.exceptions.ReadTimeoutError]
    except ImportError:  # the object store's client is optional (the team extra)
        pass
    try:
        import httpx

        types += [httpx.TransportError]
    except ImportError:  # pragma: no cover (a dependency of Prefect)
        pass
    return tuple(types)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a connection-type failure (itself, or what it was raised from: MLflow wraps the
    requests error in an MlflowException). Our own errors (validation, refused promotions) never are."""
    from components.errors import DlfolioError

    if isinstance(exc, DlfolioError | ValueError | KeyError | TypeError):
        return False
    transient = _transient_types()
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, transient):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


def retry_on_transient_io(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: retry the failed task run only if its error was transient I/O."""
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 (the failed state's error, whatever it is)
        return is_transient(exc)
    return False


TRANSIENT_IO_RETRIES: dict[str, Any] = {
    "retries": len(DELAYS),
    "retry_delay_seconds": DELAYS,
    "retry_condition_fn": retry_on_transient_io,
}
