"""dlfolio results: every project's headline figures from outputs/*/metrics.json, as the README's table."""

START, END = "<!-- results:start -->", "<!-- results:end -->"


def register(sub) -> None:
    p = sub.add_parser(
        "results",
        help="print each project's test metric, test-set size and training time from outputs/ (--write: into README)",
        description="A markdown table of what the last `make run` (or `dvc repro`) left in outputs/*/metrics.json: "
        "each project's primary test metric, the size of its test split and its training time. --write puts the "
        "table into README.md between the results markers, so the README says what a fresh clone's run gives.",
    )
    p.add_argument("--root", default=".", help="project root holding outputs/ (default: cwd)")
    p.add_argument("--write", metavar="FILE", help="replace the table between the markers in FILE (e.g. README.md)")
    p.set_defaults(func=main)


def test_size(metrics: dict) -> str:
    from components.tracking.outputs import test_size_key

    key = test_size_key(metrics)
    return "-" if key is None else str(int(metrics[key]))


def table(root) -> str:
    import json

    from components.projects import CATALOG, get_project

    rows = ["| project | test metric | value | test items | training (s) |", "|---|---|---|---|---|"]
    for name in CATALOG:
        path = root / "outputs" / name / "metrics.json"
        if not path.is_file():
            rows.append(f"| `{name}` | - | not run | - | - |")
            continue
        metrics = json.loads(path.read_text())
        spec = get_project(name)
        metric = spec.primary_metric
        arrow = "higher is better" if spec.higher_is_better else "lower is better"
        value = metrics.get(metric)
        shown = "-" if value is None else f"{value:.4g}"
        seconds = metrics.get("train.seconds")
        rows.append(
            f"| `{name}` | {metric} ({arrow}) | {shown} | {test_size(metrics)} | "
            f"{'-' if seconds is None else f'{seconds:.0f}'} |"
        )
    return "\n".join(rows)


def main(args) -> int:
    from pathlib import Path

    from components.errors import DlfolioError

    root = Path(args.root).resolve()
    text = table(root)
    if not args.write:
        print(text)
        return 0
    target = Path(args.write)
    page = target.read_text()
    if START not in page or END not in page:
        raise DlfolioError(f"{target}: no {START} ... {END} block to write the table into")
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    target.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    print(f"wrote the results table of {text.count(chr(10)) - 1} projects into {target}")
    return 0
