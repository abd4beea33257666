"""dlfolio stages: generate dvc.yaml, one stage per project with only the code its run imports as deps."""


def register(sub) -> None:
    p = sub.add_parser(
        "stages",
        help="generate dvc.yaml (one stage per project; deps from the import graph)",
        description="Print dvc.yaml as generated from params.yaml's projects and the static import "
        "graph of components/ and flows/ (see flows/stages.py). --write replaces "
        "dvc.yaml; --check exits 1 if dvc.yaml differs from it.",
    )
    p.add_argument("--write", action="store_true", help="write it to dvc.yaml")
    p.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml is not what would be generated")
    p.add_argument("--params", default="params.yaml", help="parameters file, relative to --root (default: %(default)s)")
    p.add_argument("--root", default=".", help="repository root holding components/, flows/ (default: cwd)")
    p.set_defaults(func=main)


def main(args) -> int:
    import sys
    from pathlib import Path

    from flows.stages import render

    root = Path(args.root).resolve()
    text = render(root, args.params)
    target = root / "dvc.yaml"
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is not what `dlfolio stages --write` generates; run it", file=sys.stderr)
            return 1
        return 0
    if args.write:
        target.write_text(text)
        print(f"wrote {target}: {text.count('cmd: dlfolio run')} stages")
        return 0
    sys.stdout.write(text)
    return 0
