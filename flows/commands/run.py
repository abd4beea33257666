"""dlfolio run: one project's pipeline."""


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run one project's pipeline: validate, preprocess, train, evaluate, register",
        description="Run PROJECT's Prefect flow. Results go to MLflow (see `dlfolio ui`) and to "
        "outputs/PROJECT/ (metrics.json, plots/, model/) for DVC. `dvc repro` calls this "
        "once per project.",
    )
    p.add_argument("project", metavar="PROJECT", help="project name (see `dlfolio projects`)")
    p.add_argument("--params", default="params.yaml", help="parameters file, relative to --root (default: %(default)s)")
    p.add_argument("--root", default=".", help="project root holding params.yaml, data/, outputs/ (default: cwd)")
    p.add_argument(
        "--gpus",
        type=int,
        metavar="N",
        help="train on N torchrun processes (one per GPU; gloo processes on a CPU) instead of train.gpus",
    )
    p.set_defaults(func=main)


def main(args) -> int:
    import os
    from pathlib import Path

    from flows.runner import SOCKET_ENV, delegate

    if os.environ.get(SOCKET_ENV):  # a warm runner (`dlfolio runner start`, as `make run` does) runs it forked
        argv = ["run", args.project, "--params", args.params, "--root", args.root]
        code = delegate(argv + (["--gpus", str(args.gpus)] if args.gpus else []), os.environ[SOCKET_ENV])
        if code is not None:
            return code

    from components.locks import project_run_lock
    from components.projects import get_project, settings_schemas
    from components.settings import load_project_settings

    # Checked here too, so an unknown name, a params.yaml typo or a run of the same project already going fails
    # before a Prefect server starts (the flow takes the run lock itself, for good).
    get_project(args.project)
    overrides = {"train.gpus": args.gpus} if args.gpus else None
    load_project_settings(Path(args.root) / args.params, args.project, settings_schemas(), overrides)
    project_run_lock(Path(args.root).resolve() / "outputs", args.project).acquire().release()

    from flows.cli import use_prefect

    use_prefect()
    from flows.pipeline import project_pipeline

    result = project_pipeline(project=args.project, params=args.params, root=args.root, overrides=overrides)
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return 0
