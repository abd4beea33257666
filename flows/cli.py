"""`dlfolio`: run project pipelines and the tools around them.

    dlfolio projects                 list the catalog
    dlfolio data [PROJECT ...]       write the offline sample datasets under data/
    dlfolio run PROJECT              run one project's pipeline (what each `dvc repro` stage calls)
    dlfolio check                    validate params.yaml against every project's settings schema
    dlfolio models PROJECT           registered versions, aliases, metrics, last promotion decision
    dlfolio promote PROJECT          move `champion` to the challenger if it scores better on current test data
    dlfolio sync [PROJECT ...]       point `challenger` at the version outputs/ hold (after a DVC restore)
    dlfolio results [--write FILE]   each project's test metric and training time from outputs/ (the README table)
    dlfolio schedule                 serve the cron schedules in params.yaml as Prefect deployments
    dlfolio ui                       the MLflow UI on http://127.0.0.1:5000
    dlfolio label export|import      hand queried items to a human labeller and read the labels back
    dlfolio sweep PROJECT            run a grid of settings (--set train.lr=A,B) as MLflow child runs, pick the best
    dlfolio study PROJECT [NAME ...] run the named studies of params.yaml (projects.P.studies) as sweeps; --list
    dlfolio server start|status|stop the background Prefect server (with UI) that every `dlfolio run` reuses
    dlfolio stack up|status|down   a team stack here: PostgreSQL, S3 (moto), MLflow and Prefect servers, a worker

Run `dlfolio COMMAND --help` for each command's options.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys

import flows  # noqa: F401  (sets Prefect's embedded defaults before Prefect is imported)
from components.errors import DlfolioError
from flows.commands import MODULES

# Prefect's engine logs the records below for every exception in a task or a flow: the error with a traceback
# ("Task run failed with exception", "Encountered exception during execution") and the final state, which
# repeats the message ("Finished in state Failed('... DataValidationError: ...')"). A task failing inside a
# flow gives four copies before ours. For an expected error they only bury the one message that matters.
_RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


class HideExpectedFailures(logging.Filter):
    """On the terminal only: drop Prefect's reports of a ``DlfolioError`` (the CLI prints it once).

    It sits on Prefect's console handler, not on the run loggers, so the API handler still sends every record
    to the Prefect server: the run's logs in the UI keep the traceback. Other exceptions (bugs) pass untouched.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hidden: set[str] = set()  # "TypeName: first line" of each expected error dropped so far

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_RUN_LOGGERS):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, DlfolioError):
            self.hidden.add(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return False
        # The "Finished in state Failed(...)" records carry no exception, only its text, and always follow
        # the record above for the same error.
        message = record.getMessage()
        return not (message.startswith("Finished in state") and any(h in message for h in self.hidden))


def use_prefect() -> None:
    """Before a command's first Prefect import: the shared local server (flows/server.py), a quiet console."""
    from flows.server import ensure_server

    ensure_server()
    hide_expected_failures_on_console()


def hide_expected_failures_on_console() -> None:
    """Install ``HideExpectedFailures`` on Prefect's console handler (imports Prefect: flow commands only)."""
    import prefect.main  # noqa: F401  (runs Prefect's logging setup, which creates the console handler)
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, HideExpectedFailures) for f in handler.filters
        ):
            handler.addFilter(HideExpectedFailures())


def quiet_third_party_logs() -> None:
    """Prefect logs each run's progress; the libraries underneath only speak up for warnings."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("dlfolio")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # Prefect's root handler would print it a second time
    for name in ("httpx", "great_expectations", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlfolio", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_third_party_logs()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DlfolioError as exc:
        # Expected user errors, caught here once: the message says what to fix; a traceback would only bury it.
        print(f"dlfolio: error: {exc}", file=sys.stderr)
        return 2


def console() -> None:
    """The `dlfolio` command: ``main()``, then the process ends without the interpreter's teardown.

    After a pipeline, freeing torch's, MLflow's and Prefect's module state took 4 s per process (measured on
    `dlfolio run linear-regression`: flow finished -> process gone), a minute or two over `make run`'s 28 stages.
    The exit handlers (Prefect's log and event workers drain there) and the log handlers still run first, so
    nothing that a normal exit would write is lost. An uncaught exception takes the normal path, traceback and all.
    """
    code = main()
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    console()
