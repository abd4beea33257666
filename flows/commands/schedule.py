"""dlfolio schedule: serve the scheduled retrain-and-promote deployments with Prefect."""

from datetime import UTC, datetime


def register(sub) -> None:
    p = sub.add_parser(
        "schedule",
        help="serve each project's cron schedule (retrain, then promote) with Prefect",
        description="Build one 'retrain-and-promote' deployment per project whose params.yaml section "
        "has a cron 'schedule' (UTC), and serve them: this process registers them with the "
        "Prefect API (PREFECT_API_URL, e.g. a `prefect server start` with its UI) and runs "
        "each flow when due, until interrupted. --list only prints them.",
    )
    p.add_argument("--params", default="params.yaml", help="parameters file, relative to --root (default: %(default)s)")
    p.add_argument("--root", default=".", help="project root holding params.yaml, data/, outputs/ (default: cwd)")
    p.add_argument("--list", action="store_true", help="print the deployments and their next run times, then exit")
    p.add_argument(
        "--write-prefect-yaml",
        action="store_true",
        help="write prefect.yaml (the same deployments on the process work pool 'dlfolio', for `prefect deploy "
        "--all` and workers), then exit",
    )
    p.set_defaults(func=main)


def next_runs(cron: str, count: int = 2) -> list[str]:
    from prefect._vendor.croniter import croniter
    from prefect.client.schemas.schedules import CronSchedule

    CronSchedule(cron=cron)  # the same check Prefect makes when it schedules runs
    it = croniter(cron, datetime.now(UTC))
    return [it.get_next(datetime).strftime("%Y-%m-%d %H:%M UTC") for _ in range(count)]


def main(args) -> int:
    if args.write_prefect_yaml:
        from pathlib import Path

        from flows.schedules import prefect_yaml

        path = Path(args.root).resolve() / "prefect.yaml"
        path.write_text(prefect_yaml(args.params, args.root))
        print(f"wrote {path}")
        return 0
    if not args.list:  # serving registers deployments with a server; listing them needs none
        from flows.cli import use_prefect

        use_prefect()
    from flows.schedules import build_deployments, serve

    deployments = build_deployments(args.params, args.root)
    if not deployments:
        print(f"{args.params}: no project has a 'schedule'; add e.g. `schedule: \"0 3 * * 1\"` to a project section")
        return 0
    for d in deployments:
        cron = d.schedules[0].schedule.cron
        print(f"{d.flow_name}/{d.name}: cron '{cron}' (next: {', '.join(next_runs(cron))})")
    if args.list:
        return 0
    serve(deployments)
    return 0
