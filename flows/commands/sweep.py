"""dlfolio sweep: run a project's pipeline over a grid of settings, or an Optuna search, and pick the best."""

import argparse

DESCRIPTION = """\
Run PROJECT's pipeline once per configuration of a grid (or per trial of an Optuna search) and compare them
on one metric.

Each --set KEY=V1,V2,... sweeps one key of PROJECT's params.yaml section (a dotted path such as train.lr,
values as YAML: 0.001, true, adam, [64, 32]); several --set multiply into their cartesian product. Every
configuration is checked against the project's settings before anything runs: an unknown key or a value of
the wrong type is reported with its YAML path and what is allowed there.

--search optuna searches the same space with Optuna instead of trying every point: --trials N trials, TPE
seeded with the project's seed (the same search asks the same configurations). There a --set is a list of
values (a categorical choice) or one range:
  KEY=LOW..HIGH         uniform; integers when both ends are integers (train.epochs=10..100), else floats
  KEY=LOW..HIGH:log     log-uniform (train.lr=1e-4..1e-1:log; LOW above 0)
  KEY=LOW..HIGH:STEP    on a grid of STEP (train.epochs=10..100:10)
Both ends of every range and every listed value are checked against the settings before the first trial.

Configurations run at the same time as Prefect tasks on a Dask cluster: by default a local one of --workers
worker processes (on 127.0.0.1, for this run only; DLFOLIO_WORKERS, default 2), or the running cluster whose
scheduler is at --address (DLFOLIO_DASK_ADDRESS; its workers need this repository and the same MLflow and
Prefect servers). --workers 0 runs them one by one in this process. An Optuna search asks --workers trials at
a time and tells Optuna their metrics when they are done.

In MLflow, the sweep is one parent run with one child run per configuration (its settings, test metrics, and
the process that ran it: tags fanout.pid, fanout.worker) and the comparison: sweep/comparison.csv,
sweep/comparison.png (the metric per configuration, or against the swept key when there is one numeric key;
log axis for learning rates) and sweep/best_config.yaml. Swept runs never register or promote a model and
leave outputs/PROJECT alone. A configuration that fails or diverges is marked failed in the table, the others
still run, and it is never the best.

The best configuration is the one with the best --metric (default: the project's primary metric, in the
project's direction). --write-best writes its values into params.yaml, changing only those values' text, so
comments and layout stay; without it the best configuration and the command that applies it are printed.

examples:
  dlfolio sweep linear-regression --set train.lr=0.001,0.01,0.1,0.6 --set train.epochs=100,500
  dlfolio sweep linear-regression --search optuna --trials 8 --set train.lr=1e-4..1e-1:log --set train.epochs=10..100
"""


def add_run_arguments(p, set_help: str) -> None:
    """The arguments a sweep and a study share: --set, where the configurations run, and the files."""
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=V1,V2", help=set_help)
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local Dask worker processes running configurations at the same time; 0: one by one in this "
        "process (default: DLFOLIO_WORKERS, else 2)",
    )
    p.add_argument("--parallel", type=int, dest="workers", help=argparse.SUPPRESS)  # the former name of --workers
    p.add_argument(
        "--address",
        metavar="URL",
        help="scheduler of a running Dask cluster to run them on, e.g. tcp://10.0.0.5:8786 "
        "(default: DLFOLIO_DASK_ADDRESS, else a local cluster)",
    )
    p.add_argument("--params", default="params.yaml", help="parameters file, relative to --root (default: %(default)s)")
    p.add_argument("--root", default=".", help="project root holding params.yaml, data/ (default: cwd)")


def fanout_settings(args):
    """--workers / --address over DLFOLIO_WORKERS / DLFOLIO_DASK_ADDRESS, validated (a one-line error)."""
    from components.settings import FanoutSettings, SettingsError

    try:
        return FanoutSettings.resolve(args.workers, args.address)
    except SettingsError as exc:
        args.parser.error(str(exc))


def register(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a project over a grid of settings or an Optuna search (learning rates, ...) and pick the best",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("project", metavar="PROJECT", help="project name (see `dlfolio projects`)")
    p.add_argument("--metric", help="test metric to compare (default: the project's primary metric)")
    p.add_argument(
        "--goal",
        choices=("max", "min"),
        help="whether higher or lower --metric is better (default: the project's direction for its "
        "primary metric, else lower for names like loss, rmse, error)",
    )
    p.add_argument(
        "--search",
        choices=("grid", "optuna"),
        default="grid",
        help="every configuration of the grid, or an Optuna search of --trials (default: %(default)s)",
    )
    p.add_argument("--trials", type=int, default=8, metavar="N", help="trials of --search optuna (default: 8)")
    p.add_argument("--write-best", action="store_true", help="write the best configuration into params.yaml")
    p.add_argument(
        "--max-runs",
        type=int,
        default=32,
        help="refuse grids (or --trials) with more configurations than this (default: %(default)s)",
    )
    add_run_arguments(
        p, "a swept key and its values (or, with --search optuna, a range LOW..HIGH[:log|:STEP]); repeat for more keys"
    )
    p.set_defaults(func=main, parser=p)


def main(args) -> int:
    from pathlib import Path

    import pandas as pd

    from components.projects import get_project, settings_schemas
    from components.tracking import sweep

    if args.max_runs < 1 or args.trials < 1:
        args.parser.error("--max-runs and --trials must be at least 1")
    fanout = fanout_settings(args)
    get_project(args.project)
    if args.search == "grid":
        grid = sweep.parse_sets(args.sets)
        configs = sweep.expand_grid(grid)
        if len(configs) > args.max_runs:
            args.parser.error(f"the grid has {len(configs)} configurations, more than --max-runs {args.max_runs}")
    else:
        grid = sweep.parse_space(args.sets)
        if args.trials > args.max_runs:
            args.parser.error(f"--trials {args.trials} is more than --max-runs {args.max_runs}")
        configs = sweep.probe_configs(grid)
    # Checked here too, so a typo fails in a second, before Prefect and MLflow start.
    sweep.validate_configs(Path(args.root) / args.params, args.project, configs, settings_schemas())

    from flows.cli import use_prefect

    use_prefect()
    from flows.sweep import run_sweep

    result = run_sweep(
        args.project,
        grid,
        fanout=fanout,
        params=args.params,
        root=args.root,
        metric=args.metric,
        goal=args.goal,
        write_back=args.write_best,
        max_runs=args.max_runs,
        search=args.search,
        trials=args.trials,
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
    trial = f"{result['best_name'].split()[0]}, " if args.search == "optuna" else ""
    print(
        f"best ({trial}{metric}={result['best_value']:.4g}, {'higher' if result['higher_is_better'] else 'lower'} "
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
