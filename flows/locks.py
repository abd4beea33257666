"""Which lock serialises promotions: shared between hosts when a team's Prefect server is configured.

On one host (the default: `dlfolio` started its own Prefect server, or none is set) the file lock beside the
store does it (``components.tracking.registry.exclusive``). Two hosts share no file system that the lock could
live on, but they share the Prefect server: there, a promotion holds one slot of the global concurrency limit
``dlfolio-promote-PROJECT`` (limit 1, created on the server on first use), and the host's file lock inside it
(so a promotion on the same host without the team's settings is still excluded). Its slot is a lease that the holder
renews; a holder that dies stops renewing, so a crash frees the slot when the lease ends (``LEASE_SECONDS``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

LEASE_SECONDS = 60.0
WAIT_SECONDS = 1800.0  # a promotion scores two models on the test split: minutes at most


def limit_name(project: str) -> str:
    return f"dlfolio-promote-{project}"


def team_prefect_api() -> str | None:
    """The team's Prefect API URL, or None on a single host (unset, or the server dlfolio started here)."""
    from flows.server import LOCAL_API_ENV

    api = os.environ.get("PREFECT_API_URL")
    if not api or api == os.environ.get(LOCAL_API_ENV):
        return None
    return api


def promotion_lock(project: str) -> AbstractContextManager | None:
    """The shared lock for ``project``'s promotions with a team's Prefect server; None: the host's file lock."""
    return shared_promotion_lock(project) if team_prefect_api() else None


def ensure_limit(name: str) -> None:
    """Create the global concurrency limit ``name`` (limit 1) on the server unless it exists; a race with another
    process creating it is fine (409 from the server: it exists)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                pass


@contextmanager
def shared_promotion_lock(project: str, wait: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the one slot of ``dlfolio-promote-PROJECT`` on the Prefect server (strict: a missing limit is an
    error, never a silent pass)."""
    from prefect.concurrency.sync import concurrency

    name = limit_name(project)
    ensure_limit(name)
    with concurrency(name, occupy=1, timeout_seconds=wait, lease_duration=LEASE_SECONDS, strict=True):
        yield
