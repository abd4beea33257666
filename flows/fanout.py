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

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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


@contextmanager
def cluster(fanout: FanoutSettings) -> Iterator[FanoutSettings]:
    """For ``workers`` > 0 without an address: a LocalCluster for the ``with`` block, yielding ``fanout`` with its
    scheduler's address (what ``task_runner`` connects to); otherwise ``fanout`` itself.

    Each worker process has one task thread and ``cpu_count // workers`` threads for torch and BLAS (Dask's
    default is one: right for 2 workers on 2 cores, a waste for 1), or OMP_NUM_THREADS where that is set.
    Starting a worker, Dask's nanny writes its OMP_NUM_THREADS, PYTHONHASHSEED and MALLOC_TRIM_THRESHOLD_ into
    this process's environment; they are put back, so what this process starts later (torchrun, DVC) sees the
    environment it had."""
    fanout = effective(fanout)
    if fanout.address or fanout.workers == 0:
        yield fanout
        return
    import dask
    from distributed import LocalCluster

    # an OMP_NUM_THREADS of the user's (or a test's: one thread everywhere) wins
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // fanout.workers))
    environ = dict(os.environ)
    try:
        with dask.config.set(
            {
                "distributed.worker.multiprocessing-method": "forkserver",
                "distributed.nanny.pre-spawn-environ": {
                    "MALLOC_TRIM_THRESHOLD_": 65536,
                    "OMP_NUM_THREADS": threads,
                    "MKL_NUM_THREADS": threads,
                    "OPENBLAS_NUM_THREADS": threads,
                    "DASK_LOGGING__DISTRIBUTED": "warning",  # a worker's comings and goings are no news in a flow
                }
            }
        ):
            preload_workers()
            local = LocalCluster(
                n_workers=fanout.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                memory_limit=0,  # a training's peak is the machine's business, not the nanny's (it would kill it)
                silence_logs=logging.WARNING,  # workers joining and leaving are no news in a flow's log
            )
    finally:
        os.environ.clear()
        os.environ.update(environ)
    logging.getLogger("distributed").setLevel(logging.WARNING)  # also the scheduler's closing words, here
    try:
        yield fanout.model_copy(update={"address": local.scheduler_address})
    finally:
        local.close()


WORKER_PRELOAD = ("flows.sweep", "flows.pipeline", "components.projects")


def preload_workers() -> None:
    """Workers fork from a forkserver that has imported the pipeline once (torch, Prefect, MLflow, every project:
    15-30 s of imports on a busy 2-core machine), instead of each spawned worker importing it all again.
    The forkserver is a fresh interpreter started on first use (no threads, no CUDA), so forking it is safe."""
    import multiprocessing
    import multiprocessing.forkserver

    from distributed.utils import get_mp_context

    get_mp_context()  # Dask's own preload list first (distributed, numpy, ...); ours is added to it
    preload = list(getattr(multiprocessing.forkserver._forkserver, "_preload_modules", None) or ["distributed"])
    preload += [m for m in WORKER_PRELOAD if m not in preload]
    multiprocessing.get_context("forkserver").set_forkserver_preload(preload)


def task_runner(fanout: FanoutSettings):
    """The Prefect task runner for ``fanout``: DaskTaskRunner connected to ``fanout.address`` (a cluster of
    ``cluster``, or one of the user's), a LocalCluster of its own (``workers`` > 0 without ``cluster``), or one
    thread in this process (``workers: 0``)."""
    if fanout.address is None and fanout.workers == 0:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner

    if fanout.address:
        return DaskTaskRunner(address=fanout.address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": fanout.workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
            "memory_limit": 0,
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
        with cluster(fanout) as where, task_runner(where) as runner:
            futures = [
                runner.submit(_call, {"function": function, "kwargs": kwargs, "name": name})
                for kwargs, name in zip(kwargs_list, names)
            ]
            return [future.result() for future in futures]

    return run
