"""`dlfolio`: run project pipelines and the tools around them.

    dlfolio projects                 list the catalog
    dlfolio data [PROJECT ...]       write the offline sample datasets under data/
    dlfolio run PROJECT              run one project's pipeline (what each `dvc repro` stage calls)
    dlfolio check                    validate params.yaml against every project's settings schema
    dlfolio models PROJECT           registered versions, aliases, metrics, last promotion decision
    dlfolio promote PROJECT          move `champion` to the challenger if it scores better on current test data
    dlfolio schedule                 serve the cron schedules in params.yaml as Prefect deployments
    dlfolio ui                       the MLflow UI on http://127.0.0.1:5000
    dlfolio label export|import      hand queried items to a human labeller and read the labels back
    dlfolio sweep PROJECT            run a grid of settings (--set train.lr=A,B) as MLflow child runs, pick the best

Run `dlfolio COMMAND --help` for each command's options.
"""

from __future__ import annotations

import argparse
import logging
import sys

import flows  # noqa: F401  (sets Prefect's embedded defaults before Prefect is imported)
from components.data.formats.images import MissingDataError
from components.models.transfer import WeightsNotFoundError
from components.projects import UnknownProjectError
from components.settings import SettingsError
from components.tracking.sweep import SweepError
from components.validation.expectations import DataValidationError
from flows.commands import MODULES

USER_ERRORS = (SettingsError, DataValidationError, MissingDataError, UnknownProjectError, WeightsNotFoundError,
               SweepError)


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
    parser = argparse.ArgumentParser(prog="dlfolio", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_third_party_logs()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as exc:
        # Expected user errors: the message says what to fix; a traceback would only bury it.
        print(f"dlfolio: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
