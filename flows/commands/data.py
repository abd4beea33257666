"""dlfolio data: write the offline sample datasets, never over a user's data."""

import functools
import inspect
import time
from pathlib import Path

SHOWN = 10  # paths listed per project before "... and N more"


def register(sub) -> None:
    p = sub.add_parser(
        "data",
        help="write the offline sample datasets (deterministic: same bytes every time)",
        description="Write each project's offline sample into DATA_ROOT/<project>, in the project's "
        "real format, where that directory is missing or empty or holds a sample this command wrote. "
        "A directory with anything else in it (your data) is left as it is and named; --force "
        "overwrites it, listing the paths it replaced or deleted. Afterwards `dvc status` shows "
        "data.dvc unchanged: the samples are byte-identical on every machine. The hashes of what it "
        "wrote go to .dlfolio/samples/ beside DATA_ROOT (outside data/, so data.dvc's hash stays). A sample "
        "with options (face-mask's data.mask_method) takes them from the project's section of --params.",
    )
    p.add_argument("projects", nargs="*", metavar="PROJECT", help="projects to generate (default: all)")
    p.add_argument("--data-root", default="data", help="where the datasets live (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite data that is not a sample (lists the paths)")
    p.add_argument(
        "--params",
        default="params.yaml",
        help="parameters file for the samples' options, validated (default: %(default)s; missing file or project "
        "section: the defaults)",
    )
    p.set_defaults(func=main)


def listed(paths: list[str]) -> str:
    more = f", ... and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return ", ".join(paths[:SHOWN]) + more


def sample_maker(name: str, params: Path):
    """The project's ``make_sample``, given its validated settings from ``params`` where it takes a ``settings``
    argument (its sample has options) and the file has the project's section."""
    from components.projects import get_project, settings_schemas
    from components.settings import load_project_settings, read_params

    make = get_project(name).make_sample
    if "settings" not in inspect.signature(make).parameters or not params.is_file():
        return make
    if name not in (read_params(params).get("projects") or {}):
        return make
    return functools.partial(make, settings=load_project_settings(params, name, settings_schemas()))


def main(args) -> int:
    from components.data.samples.writer import write_sample
    from components.projects import PROJECTS

    data_root = Path(args.data_root)
    manifests = data_root.resolve().parent / ".dlfolio" / "samples"
    for name in args.projects or sorted(PROJECTS):
        started = time.perf_counter()
        out = data_root / name
        result = write_sample(sample_maker(name, Path(args.params)), out, manifests, name, force=args.force)
        took = f"in {time.perf_counter() - started:.1f}s"
        if result.action == "kept":
            print(
                f"{name}: {out} holds data that is not the sample ({len(result.paths)} path(s) differ: "
                f"{listed(result.paths)}); left as it is (`dlfolio data --force {name}` overwrites it)"
            )
        elif result.action == "unchanged":
            print(f"{name}: {out} already holds the sample {result.counts}; unchanged ({took})")
        elif result.action == "overwrote":
            print(
                f"{name}: --force: wrote {result.counts} to {out} {took}, replacing or deleting "
                f"{len(result.paths)} path(s): {', '.join(result.paths)}"
            )
        elif result.action == "replaced":
            print(f"{name}: replaced the previous sample in {out} with {result.counts} {took}")
        else:  # wrote, into a missing or empty directory
            print(f"{name}: wrote {result.counts} to {out} {took}")
    return 0
