"""dlfolio models: a project's registered model versions, aliases, metrics and promotion decisions."""


def register(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list a project's registered model versions with aliases and metrics",
        description="One line per version of PROJECT's registered model, newest first: its aliases "
        "(champion, challenger), when it was registered, the test metrics its run logged, "
        "the data hash and git commit it was trained on, and the last promotion decision.",
    )
    p.add_argument("project", metavar="PROJECT", help="project name (its registered model has the same name)")
    p.add_argument("--root", default=".", help="project root holding mlruns/ (default: cwd)")
    p.set_defaults(func=main)


def main(args) -> int:
    from pathlib import Path

    import pandas as pd
    from mlflow.tracking import MlflowClient

    from components.projects import get_project
    from components.tracking import registry
    from components.tracking import runs as tracking

    get_project(args.project)
    tracking.configure(Path(args.root).resolve())
    table = registry.list_versions(MlflowClient(), args.project)  # RegistryError: a DlfolioError, see flows/cli.py
    with pd.option_context(
        "display.width",
        200,
        "display.max_columns",
        None,
        "display.max_colwidth",
        60,
        "display.float_format",
        "{:.4f}".format,
    ):
        print(table.to_string(index=False) if len(table) else f"{args.project}: no versions registered")
    return 0
