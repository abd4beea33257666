"""dlfolio data: write the offline sample datasets."""

import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "data",
        help="write the offline sample datasets (deterministic: same bytes every time)",
        description="Write each project's offline sample into DATA_ROOT/<project>, in the project's "
        "real format. Existing sample directories are replaced. Afterwards `dvc status` "
        "shows data.dvc unchanged: the samples are byte-identical on every machine.",
    )
    p.add_argument("projects", nargs="*", metavar="PROJECT", help="projects to generate (default: all)")
    p.add_argument("--data-root", default="data", help="where the datasets live (default: %(default)s)")
    p.set_defaults(func=main)


def main(args) -> int:
    from components.projects import PROJECTS, get_project

    for name in args.projects or sorted(PROJECTS):
        started = time.perf_counter()
        out = Path(args.data_root) / name
        counts = get_project(name).make_sample(out)
        print(f"{name}: wrote {counts} to {out} in {time.perf_counter() - started:.1f}s")
    return 0
