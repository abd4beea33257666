"""dlfolio promote: move a project's `champion` alias through the promotion gate."""

import sys

REFUSED = 1  # exit status when the gate keeps the champion, so scripts can tell (`dlfolio promote X && deploy`)


def register(sub) -> None:
    p = sub.add_parser(
        "promote",
        help="promote the challenger to champion if it beats the champion on the current test data",
        description="Score the candidate (alias 'challenger', or --version N) and the current 'champion' on PROJECT's "
        "primary metric, both on the test split of the data as it is now, and move 'champion' only if the "
        "candidate is better (or there is no champion). The decision and its reason are printed and "
        "recorded as promotion.* tags on the candidate version. Exit status: 0 promoted (or already "
        "champion), 1 refused, 2 usage or data error.",
    )
    p.add_argument("project", metavar="PROJECT", help="project name (its registered model has the same name)")
    p.add_argument("--version", type=int, help="candidate version (default: the version with alias 'challenger')")
    p.add_argument("--force", action="store_true", help="promote even if the candidate is not better (needs --reason)")
    p.add_argument("--reason", help="why the promotion is forced; recorded on the version")
    p.add_argument("--params", default="params.yaml", help="parameters file, relative to --root (default: %(default)s)")
    p.add_argument("--root", default=".", help="project root holding params.yaml and data/ (default: cwd)")
    p.set_defaults(func=main, parser=p)


def main(args) -> int:
    if args.force and not (args.reason and args.reason.strip()):
        args.parser.error("--force needs --reason TEXT: the reason is recorded on the promoted version")
    from flows.cli import use_prefect

    use_prefect()
    from flows.promotion import promote_model

    try:
        decision = promote_model(
            project=args.project,
            version=args.version,
            force=args.force,
            reason=args.reason,
            params=args.params,
            root=args.root,
        )
    except NotImplementedError as exc:  # a project without Project.score (RegistryError: the CLI's DlfolioError)
        print(f"dlfolio: error: {exc}", file=sys.stderr)
        return 2
    metric, champion = decision["metric"], decision["champion"]
    print(f"{decision['model']} version {decision['candidate']}: {decision['outcome']}")
    print(
        f"  {metric} on the current test data: candidate {decision['candidate_score']:.4f}, "
        + ("no champion" if champion is None else f"champion (version {champion}) {decision['champion_score']:.4f}")
    )
    print(f"  reason: {decision['reason']}")
    return REFUSED if decision["outcome"] == "refused" else 0
