"""dlfolio label: active learning with a person as the oracle.

    dlfolio label export PROJECT          fit on the labels so far, write the next items to label
    dlfolio label import PROJECT FILE     check the filled-in file, write its labels into the dataset, refit,
                                          write the next items

State lives in <labels_dir>/<project>/ (labels/ by default): state.json (the labelled set, the pending items,
one history row per round) and queries.csv (fill in its `label` column, then import it). An import writes the
labels into the dataset itself (image folders: each file moved into <data_dir>/<class>/, from the
active_learning.unlabelled_dir pool or, for a correction, from its old class folder), so `dvc add data` versions
them and the next `dvc repro` trains on them. A bad row anywhere refuses the file, naming its line: nothing is
written.
"""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "label",
        help="human-in-the-loop active learning: export items to label, import labels",
        description=__doc__,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, help_ in (
        ("export", "write the next queried items (item, prediction, empty label) to queries.csv"),
        ("import", "read a labelled queries file, validate it, add the labels and continue"),
    ):
        v = verbs.add_parser(verb, help=help_)
        v.add_argument("project", metavar="PROJECT")
        if verb == "import":
            v.add_argument("file", type=Path, metavar="FILE", help="the filled-in CSV (columns item, label)")
        v.add_argument("--params", default="params.yaml", help="parameters file, relative to --root")
        v.add_argument("--root", default=".", help="project root (default: cwd)")
    p.set_defaults(func=main)


def main(args) -> int:
    from components.active.labels import LabelSession
    from components.projects import get_project, settings_schemas
    from components.settings import load_project_settings

    root = Path(args.root).resolve()
    settings = load_project_settings(root / args.params, args.project, settings_schemas())
    if not settings.data_dir.is_absolute():
        settings = settings.model_copy(update={"data_dir": root / settings.data_dir})
    session = LabelSession(get_project(args.project), settings, root)  # LabelFileError: a DlfolioError (flows/cli.py)
    if args.verb == "import":
        score, table, state = session.import_labels(args.file)
        print(
            f"{args.project}: imported labels; {score['labels']} labelled, test accuracy "
            f"{score['test_accuracy']:.4f} (round {score['round']})"
        )
        if session.store is None:
            print(
                f"{args.project}: its dataset format keeps labels in its files; the labels stay in {session.state_path}"
            )
        elif session.written:
            print(
                f"{args.project}: wrote {len(session.written)} labelled file(s) into {session.store.data_dir}; "
                "`dvc add data` versions them and the next `dvc repro` trains on them"
            )
    else:
        table, state = session.export()
    print(
        f"{args.project}: {len(table)} item(s) to label ({state.strategy}) in {session.queries_path}; "
        f"fill in its 'label' column, then `dlfolio label import {args.project} {session.queries_path}`"
    )
    return 0
