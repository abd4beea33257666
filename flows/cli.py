"""`dlfolio`: run project pipelines, make the offline samples, check params.yaml.

    dlfolio projects                 list the catalog
    dlfolio data [PROJECT ...]       write the offline sample datasets under data/
    dlfolio run PROJECT              run one project's pipeline (what each `dvc repro` stage calls)
    dlfolio check                    validate params.yaml against every project's settings schema
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import flows  # noqa: F401  (sets Prefect's embedded defaults before Prefect is imported)


def _cmd_projects(args) -> int:
    from components.projects import PROJECTS

    width = max(map(len, PROJECTS))
    for name, project in sorted(PROJECTS.items()):
        print(f"{name:<{width}}  {project.summary}")
    return 0


def _cmd_data(args) -> int:
    from components.projects import PROJECTS, get_project

    names = args.projects or sorted(PROJECTS)
    for name in names:
        project = get_project(name)
        started = time.perf_counter()
        counts = project.make_sample(Path(args.data_root) / name)
        print(f"{name}: wrote {counts} to {Path(args.data_root) / name} in {time.perf_counter() - started:.1f}s")
    return 0


def _cmd_check(args) -> int:
    from components.projects import settings_schemas
    from components.settings import load_all_settings

    settings = load_all_settings(args.params, settings_schemas())
    print(f"{args.params}: {len(settings)} project section(s) valid: {', '.join(settings)}")
    return 0


def _cmd_run(args) -> int:
    from flows.pipeline import project_pipeline

    result = project_pipeline(project=args.project, params=args.params, root=args.root)
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return 0


def quiet_third_party_logs() -> None:
    """Prefect logs each run's progress; the libraries underneath only speak up for warnings."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s", "%H:%M:%S"))
    logging.getLogger("dlfolio").addHandler(handler)
    logging.getLogger("dlfolio").setLevel(logging.INFO)
    logging.getLogger("dlfolio").propagate = False  # Prefect's root handler would print it a second time
    for name in ("httpx", "great_expectations", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlfolio", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("projects", help="list every project in the catalog")
    p.set_defaults(func=_cmd_projects)

    p = sub.add_parser("data", help="write the offline sample datasets (deterministic: same bytes every time)",
                       description="Write each project's offline sample into DATA_ROOT/<project>, in the project's "
                                   "real format. Existing sample directories are replaced.")
    p.add_argument("projects", nargs="*", metavar="PROJECT", help="projects to generate (default: all)")
    p.add_argument("--data-root", default="data", help="where the datasets live (default: %(default)s)")
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("check", help="validate params.yaml against the settings schemas")
    p.add_argument("--params", default="params.yaml", help="parameters file (default: %(default)s)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("run", help="run one project's pipeline: validate, preprocess, train, evaluate, register",
                       description="Run PROJECT's Prefect flow. Results go to MLflow (see `dlfolio ui`) and to "
                                   "outputs/PROJECT/ (metrics.json, plots/, model/) for DVC.")
    p.add_argument("project", metavar="PROJECT", help="project name (see `dlfolio projects`)")
    p.add_argument("--params", default="params.yaml", help="parameters file, relative to --root (default: %(default)s)")
    p.add_argument("--root", default=".", help="project root holding params.yaml, data/, outputs/ (default: cwd)")
    p.set_defaults(func=_cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_third_party_logs()
    args = build_parser().parse_args(argv)
    from components.data.images import MissingDataError
    from components.settings import SettingsError
    from components.validation import DataValidationError

    try:
        return args.func(args)
    except (SettingsError, DataValidationError, MissingDataError, KeyError) as exc:
        # Expected user errors: the message says what to fix; a traceback would only bury it.
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        print(f"dlfolio: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
