"""dlfolio sweep: run a project's pipeline over a grid of settings and pick the best configuration."""

import argparse

DESCRIPTION = """\
Run PROJECT's pipeline once per configuration of a grid and compare them on one metric.

Each --set KEY=V1,V2,... sweeps one key of PROJECT's params.yaml section (a dotted path such as train.lr,
values as YAML: 0.001, true, adam, [64, 32]); several --set multiply into their cartesian product. Every
configuration is checked against the project's settings before anything runs: an unknown key or a value of
the wrong type is reported with its YAML path and what is allowed there.

In MLflow, the sweep is one parent run with one child run per configuration (its settings and test metrics)
and the comparison: sweep/comparison.csv, sweep/comparison.png (the metric per configuration, or against the
swept key when there is one numeric key; log axis for learning rates) and sweep/best_config.yaml. Swept runs
never register or promote a model and leave outputs/PROJECT alone. A configuration that fails or diverges is
marked failed in the table, the others still run, and it is never the best.

The best configuration is the one with the best --metric (default: the project's primary metric, in the
project's direction). --write-best writes its values into params.yaml, changing only those values' text, so
comments and layout stay; without it the best configuration and the command that applies it are printed.

example:
  dlfolio sweep linear-regression --set train.lr=0.001,0.01,0.1,0.6 --set train.epochs=100,500
"""


def register(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a project over a grid of settings (learning rates, batch sizes, ...) and pick the best",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("project", metavar="PROJECT", help="project name (see `dlfolio projects`)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a swept key and its values; repeat for more keys (the grid is the product)",
    )
    p.add_argument("--metric", help="test metric to compare (default: the project's primary metric)")
    p.add_argument(
        "--goal",
        choices=("max", "min"),
        help="whether higher or lower --metric is better (default: the project's direction for its "
        "primary metric, else lower for names like loss, rmse, error)",
    )
    p.add_argument("--write-best", action="store_true", help="write the best configuration into params.yaml")
    p.add_argument(
        "--max-runs",
        type=int,
        default=32,
        help="refuse grids with more configurations than this (default: %(default)s)",
    )
    p.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="N",
        help="configurations run at the same time, each in its own process (default: %(default)s)",
    )
    p.add_argument("--params", default="params.yaml", help="parameters file, relative to --root (default: %(default)s)")
    p.add_argument("--root", default=".", help="project root holding params.yaml, data/ (default: cwd)")
    p.set_defaults(func=main, parser=p)


def main(args) -> int:
    from pathlib import Path

    import pandas as pd

    from components.projects import get_project, settings_schemas
    from components.tracking import sweep

    if args.max_runs < 1 or args.parallel < 1:
        args.parser.error("--max-runs and --parallel must be at least 1")
    get_project(args.project)
    grid = sweep.parse_sets(args.sets)
    configs = sweep.expand_grid(grid)
    if len(configs) > args.max_runs:
        args.parser.error(f"the grid has {len(configs)} configurations, more than --max-runs {args.max_runs}")
    # Checked here too, so a typo fails in a second, before Prefect and MLflow start.
    sweep.validate_configs(Path(args.root) / args.params, args.project, configs, settings_schemas())

    from flows.cli import use_prefect

    use_prefect()
    from flows.sweep import run_sweep

    result = run_sweep(
        args.project,
        grid,
        parallel=args.parallel,
        params=args.params,
        root=args.root,
        metric=args.metric,
        goal=args.goal,
        write_back=args.write_best,
        max_runs=args.max_runs,
    )
    table = pd.DataFrame(result["table"]).drop(columns=["run_id"])
    table["error"] = table["error"].str.slice(0, 90)  # the whole message is in comparison.csv and the child run
    with pd.option_context(
        "display.width",
        200,
        "display.max_columns",
        None,
        "display.max_colwidth",
        60,
        "display.float_format",
        "{:.4g}".format,
    ):
        print(table.to_string(index=False))
    best, metric = result["best"], result["metric"]
    print(
        f"best ({metric}={result['best_value']:.4g}, {'higher' if result['higher_is_better'] else 'lower'} "
        f"is better): {sweep.label(best)}  [MLflow sweep run {result['run_id']}]"
    )
    if result["written"]:
        print(f"wrote it into {args.params} (projects.{args.project})")
    else:
        print(
            f"apply it: {sweep.apply_command(args.project, best)}  (one run), or set in {args.params}: "
            + ", ".join(f"projects.{args.project}.{k}: {sweep.format_value(v)}" for k, v in best.items())
        )
    return 0
