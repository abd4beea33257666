"""Fan-out on Dask: a sweep's configurations and the active-learning stage's strategies as concurrent Prefect
task runs through prefect-dask's ``DaskTaskRunner``.

By default the runner starts a LocalCluster for the flow run: ``workers`` worker processes on 127.0.0.1, one
thread each (each task is a whole training: two in one process would share torch's random generator and its
thread pool), no dashboard, torn down with the flow run. With an ``address`` (``--address`` or
DLFOLIO_DASK_ADDRESS) it connects to a running Dask cluster instead; its workers need this repository on
their path and the same MLflow and Prefect servers (MLFLOW_TRACKING_URI, PREFECT_API_URL). ``workers: 0`` runs
the tasks one after the other in the flow's process: for a debugger, and where the flow itself already runs on
a Dask worker (a sweep configuration's pipeline: its active-learning strategies run in that worker, since a
worker process cannot start a cluster of its own and must not wait on its own cluster's slots).

The settings are ``components.settings.FanoutSettings`` (validated, one-line errors). Prefect-dask, dask and
distributed are imported only when a runner is built, so ``dlfolio --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from components.settings import FanoutSettings


def in_dask_worker() -> bool:
    """Whether this code runs inside a Dask worker (a task of a cluster)."""
    import sys

    if "distributed" not in sys.modules:  # nothing here started or joined a cluster
        return False
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def effective(fanout: FanoutSettings) -> FanoutSettings:
    """``fanout`` as it applies here: in a Dask worker, work runs in this process (see the module docstring)."""
    return fanout.model_copy(update={"workers": 0, "address": None}) if in_dask_worker() else fanout


def task_runner(fanout: FanoutSettings):
    """The Prefect task runner for ``fanout``: DaskTaskRunner on a local cluster or at an address, or one thread."""
    if fanout.address is None and fanout.workers == 0:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=1)
    import logging
    import os

    from prefect_dask import DaskTaskRunner

    # the cluster's own life (workers joining, closing) is no news in a flow's log; its workers read the variable
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if fanout.address:
        return DaskTaskRunner(address=fanout.address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": fanout.workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
            "memory_limit": 0,  # a training's peak is the limit's business, not the nanny's (it would kill it)
        }
    )


def describe(fanout: FanoutSettings) -> str:
    if fanout.address:
        return f"the Dask cluster at {fanout.address}"
    if fanout.workers == 0:
        return "this process, one at a time"
    return f"a local Dask cluster of {fanout.workers} worker process{'es' if fanout.workers > 1 else ''}"


def worker_identity() -> dict[str, str]:
    """Where this task runs, as MLflow tags: the process id and the Dask worker's name and address."""
    import os
    import socket

    identity = {"fanout.pid": str(os.getpid()), "fanout.host": socket.gethostname(), "fanout.worker": "local"}
    if in_dask_worker():
        from distributed import get_worker

        worker = get_worker()
        identity |= {"fanout.worker": str(worker.name), "fanout.worker_address": str(worker.address)}
    return identity


@task(name="al-strategy", task_run_name="al-{name}", cache_policy=NO_CACHE)
def _call(function: Callable[..., Any], kwargs: dict[str, Any], name: str) -> Any:
    return function(**kwargs)


def mapper(fanout: FanoutSettings) -> Callable[[Callable[..., Any], Sequence[dict[str, Any]], Sequence[str]], list]:
    """``map(function, kwargs_list, names)`` -> results in order, each call a Prefect task run on ``fanout``'s
    runner (for components that take a map and know nothing of Prefect or Dask: the active-learning stage)."""
    fanout = effective(fanout)

    def run(function: Callable[..., Any], kwargs_list: Sequence[dict[str, Any]], names: Sequence[str]) -> list:
        if fanout.address is None and fanout.workers == 0 or len(kwargs_list) <= 1:
            return [function(**kwargs) for kwargs in kwargs_list]
        with task_runner(fanout) as runner:
            futures = [
                runner.submit(_call, {"function": function, "kwargs": kwargs, "name": name})
                for kwargs, name in zip(kwargs_list, names)
            ]
            return [future.result() for future in futures]

    return run
