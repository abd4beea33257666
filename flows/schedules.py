"""Prefect deployments for the projects that have a cron ``schedule`` in params.yaml (retrain, then promote).

``dlfolio schedule`` serves them: that process is the worker, running each flow when its schedule fires. Cron
strings were already checked when params.yaml was read (components/cron.py), so a typo fails here, at start-up,
with its YAML path, not at the first firing.
"""

from __future__ import annotations

from pathlib import Path

from prefect.deployments.runner import RunnerDeployment

from components.projects import settings_schemas
from components.settings import load_all_settings


def project_schedules(params: Path) -> dict[str, str]:
    """Project -> cron string, for every project whose section has a ``schedule``."""
    return {name: s.schedule for name, s in load_all_settings(params, settings_schemas()).items() if s.schedule}


def deployment_name(project: str) -> str:
    return f"{project}-retrain-and-promote"


def build_deployments(params: str = "params.yaml", root: str | Path = ".") -> list[RunnerDeployment]:
    """One retrain-and-promote deployment per scheduled project, with its cron schedule (UTC)."""
    from flows.promotion import retrain_and_promote

    root_dir = Path(root).resolve()
    return [
        retrain_and_promote.to_deployment(
            name=deployment_name(project),
            cron=cron,
            concurrency_limit=1,  # a slow retrain never overlaps itself
            parameters={"project": project, "params": params, "root": str(root_dir)},
            description=f"Retrain {project} and promote the new version if it beats the champion ({cron}, UTC).",
            tags=["dlfolio", project],
        )
        for project, cron in project_schedules(root_dir / params).items()
    ]


def serve(deployments: list[RunnerDeployment]) -> None:
    """Register the deployments with the Prefect API and run them when due; blocks until Ctrl-C (SIGINT) or
    SIGTERM, which pause the deployments' schedules (Prefect's pause_on_shutdown) and return normally.

    What ``prefect.serve`` does, but for SIGTERM: Prefect's handler calls the runner's ``stop()`` from inside
    its running event loop, where ``stop()`` only creates an ``astop()`` coroutine nobody awaits ("RuntimeWarning:
    coroutine 'Runner.astop' was never awaited"), then exits from the handler. Here SIGTERM takes Ctrl-C's path:
    asyncio cancels the runner's task, whose exit pauses the schedules, and ``asyncio.run`` raises
    KeyboardInterrupt once it has finished.
    """
    import asyncio
    import signal

    from prefect.runner import Runner

    runner = Runner(pause_on_shutdown=True)
    for deployment in deployments:
        runner.add_deployment(deployment)
    # Runner.start() installs self.handle_sigterm for SIGTERM when it runs in the main thread: this one.
    runner.handle_sigterm = lambda *_: signal.raise_signal(signal.SIGINT)
    print(f"serving {len(deployments)} deployment(s); Ctrl-C or SIGTERM stops (schedules paused), exit status 0")
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        print("stopped: schedules paused")
