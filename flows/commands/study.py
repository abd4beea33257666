"""dlfolio study: run a project's named hyperparameter studies (params.yaml projects.P.studies)."""

import argparse

from flows.commands.sweep import add_run_arguments, fanout_settings

DESCRIPTION = """\
Run PROJECT's named hyperparameter studies from params.yaml (projects.PROJECT.studies), all of them by default.

A study is a preset sweep: `grid` entries in the language of `dlfolio sweep --set` (KEY=V1,V2,...; several
multiply), `fixed` entries KEY=VALUE set in every configuration (small epochs, a stage switched off), and the
compared `metric` (default: the project's primary one). Each study runs as one sweep: an MLflow parent run
tagged study=NAME (run name study-PROJECT-NAME) with a child run per configuration, sweep/comparison.csv and
sweep/comparison.png on the parent (and sweep/<montage>.png when the study names a figure every configuration
logs, e.g. the decision boundaries), the best configuration and its margin over the runner-up
(metric margin_<metric>). Studies never register a model and leave outputs/PROJECT alone; they are no DVC
stage, so `make run` / `dvc repro` never runs them.

Every configuration of every study is validated when params.yaml loads (`dlfolio check` too): a bad preset is
a settings error naming its YAML path, e.g. projects.numpy-dnn.studies.activations.grid.0.

Configurations run at the same time on a local Dask cluster of --workers processes (default 2), on the
cluster at --address, or one by one in this process with --workers 0, as for `dlfolio sweep`.

--set KEY=V1,V2 changes a study for this run only: a swept key's values are replaced (fewer configurations),
another key with one value is fixed (e.g. --set train.epochs=1 --set data_dir=/tmp/tiny for a quick run).

examples:
  dlfolio study numpy-dnn --list
  dlfolio study numpy-dnn activations optimizers
  dlfolio study face-mask learning-rates --set train.epochs=2
"""


def register(sub) -> None:
    p = sub.add_parser(
        "study",
        help="run a project's named hyperparameter studies from params.yaml (MLflow parent + child runs)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("project", metavar="PROJECT", help="project name (see `dlfolio projects`)")
    p.add_argument("names", nargs="*", metavar="NAME", help="studies to run (default: all of the project's)")
    p.add_argument("--list", action="store_true", help="list the project's studies and their configurations")
    add_run_arguments(p, "change the studies for this run: replace a swept key's values, or fix a key (repeatable)")
    p.set_defaults(func=main, parser=p)


def main(args) -> int:
    from pathlib import Path

    from components.grid import label, parse_set
    from components.projects import get_project
    from flows.study import plan, project_studies, select

    fanout = fanout_settings(args)
    get_project(args.project)
    studies = project_studies(Path(args.root) / args.params, args.project)
    chosen = select(studies, args.names, args.project)
    extra = dict(parse_set(text) for text in args.sets)
    if args.list:
        for name in chosen:
            study = studies[name]
            grid, fixed = plan(study, extra)
            from components.grid import expand_grid

            configs = expand_grid(grid)
            print(f"{name}: {study.description}" if study.description else name)
            print(
                f"  metric: {study.metric or get_project(args.project).primary_metric}   configurations: {len(configs)}"
            )
            for key, values in grid.items():
                print(f"  grid   {key}={','.join(map(_fmt, values))}")
            if fixed:
                print(f"  fixed  {label(fixed)}")
        return 0

    from flows.cli import use_prefect

    use_prefect()
    from flows.study import run_studies

    results = run_studies(args.project, chosen, params=args.params, root=args.root, extra=extra, fanout=fanout)
    code = 0
    for result in results:
        if "failed" in result:
            print(f"{result['study']}: {result['failed']}")
            code = 1
            continue
        failed = sum(row["status"] != "ok" for row in result["table"])
        margin = f", {result['margin']:.4g} ahead of {result['runner_up']}" if result["margin"] is not None else ""
        print(
            f"{result['study']}: best {result['best_name']} ({result['metric']}={result['best_value']:.4g}{margin}); "
            f"{len(result['table'])} configurations, {failed} failed  [MLflow run {result['run_id']}]"
        )
    return code


def _fmt(value) -> str:
    from components.grid import format_value

    return format_value(value)
