"""dlfolio sync: point each project's `challenger` at the version its DVC outputs belong to."""


def register(sub) -> None:
    p = sub.add_parser(
        "sync",
        help="point each project's 'challenger' alias at the model version its outputs/ hold",
        description="Every pipeline run records the model version it registered in "
        "outputs/PROJECT/model/registered.json, inside the stage's DVC output. When `dvc repro` restores "
        "outputs from DVC's run cache (say, after a params change is reverted), no pipeline runs and "
        "'challenger' still points at the newer version; this re-points it (`make run` calls it after "
        "`dvc repro`). Exit 2 if the registry no longer holds a recorded version, naming the stage to re-run.",
    )
    p.add_argument("projects", nargs="*", metavar="PROJECT", help="projects to sync (default: every one with outputs)")
    p.add_argument("--root", default=".", help="project root holding outputs/ and mlruns/ (default: cwd)")
    p.set_defaults(func=main)


def main(args) -> int:
    import json
    from pathlib import Path

    from components.projects import CATALOG
    from components.tracking.outputs import REGISTRATION

    root = Path(args.root).resolve()
    projects = args.projects or sorted(CATALOG)
    records = {p: root / "outputs" / p / "model" / REGISTRATION for p in projects}
    present = {p: path for p, path in records.items() if path.is_file()}
    if not present:
        print("no project's outputs record a registered version (run `make run` or `dvc repro` first)")
        return 0 if not args.projects else 2

    from mlflow.tracking import MlflowClient

    from components.tracking import registry
    from components.tracking import runs as tracking

    tracking.configure(root)
    client, failed = MlflowClient(), []
    for project, path in present.items():
        try:
            print(registry.sync_challenger(client, json.loads(path.read_text())))
        except registry.RegistryError as exc:
            print(str(exc))
            failed.append(project)
    return 2 if failed else 0
