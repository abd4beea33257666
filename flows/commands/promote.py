"""dlfolio promote: move a project's `champion` alias through the promotion gate."""

import argparse
import sys
import traceback

# Exit statuses, so scripts can tell a decision from a failure (`dlfolio promote X && deploy`).
PROMOTED = 0  # promoted, forced, or already champion
REFUSED = 1  # the gate kept the champion (the candidate is not better, or the champion's score drifted)
ERROR = 2  # nothing was decided: usage, project, params, version, a run that did not finish, an untrusted model

EXIT_STATUS = """exit status:
  0  promoted (or forced, or the candidate already is champion)
  1  refused: the champion stays (the candidate is not better, or the champion's score on today's data moved
     beyond --drift-tolerance from its score at registration: the data changed)
  2  error, nothing decided: bad usage, unknown project or version, params or data error, a version whose run
     did not finish (RUNNING after a crash, FAILED), a model outside the project's artifact store or whose
     predictor does not match the hash recorded at registration, or any other failure"""


DRIFT_TOLERANCE = 0.10  # components.tracking.registry.DRIFT_TOLERANCE; not imported here: that pulls in MLflow


def register(sub) -> None:
    p = sub.add_parser(
        "promote",
        help="promote the challenger to champion if it beats the champion on the current test data",
        description="Score the candidate (alias 'challenger', or --version N) and the current 'champion' on PROJECT's "
        "primary metric, both on the test split of the data as it is now, and move 'champion' only if the "
        "candidate is better (or there is no champion) and the champion still scores as it did when it was "
        "registered. The decision and its reason are printed and recorded as promotion.* tags on the "
        "candidate version.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("project", metavar="PROJECT", help="project name (its registered model has the same name)")
    p.add_argument("--version", type=int, help="candidate version (default: the version with alias 'challenger')")
    p.add_argument("--force", action="store_true", help="promote even if the gate refuses (needs --reason)")
    p.add_argument(
        "--reason",
        help="why (required with --force); recorded on the version, also when the candidate already is champion",
    )
    p.add_argument(
        "--drift-tolerance",
        type=float,
        default=DRIFT_TOLERANCE,
        metavar="FRACTION",
        help="refuse when the champion's score on today's data is further than this (relative) from its score at "
        "registration (default: %(default)s)",
    )
    p.add_argument("--params", default="params.yaml", help="parameters file, relative to --root (default: %(default)s)")
    p.add_argument("--root", default=".", help="project root holding params.yaml and data/ (default: cwd)")
    p.set_defaults(func=main, parser=p)


def main(args) -> int:
    if args.force and not (args.reason and args.reason.strip()):
        args.parser.error("--force needs --reason TEXT: the reason is recorded on the promoted version")
    if not args.drift_tolerance >= 0:
        args.parser.error(f"--drift-tolerance must be a fraction >= 0, not {args.drift_tolerance}")
    from pathlib import Path

    from components.errors import DlfolioError
    from flows.preflight import preflight

    # Before Prefect starts: a wrong name, version or an unpromotable version is reported at once.
    preflight(args.project, args.version, args.params, Path(args.root).resolve())  # DlfolioError: exit 2 (flows/cli.py)

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
            drift_tolerance=args.drift_tolerance,
        )
    except DlfolioError:
        raise  # one line, exit 2 (flows/cli.py)
    except Exception as exc:  # NotImplementedError (a project without Project.score) or a bug: nothing decided
        if not isinstance(exc, NotImplementedError):
            traceback.print_exc()
        print(f"dlfolio: error: promotion of {args.project} failed, nothing decided: {exc}", file=sys.stderr)
        return ERROR
    metric, champion = decision["metric"], decision["champion"]
    for repair in decision.get("repairs", ()):
        print(f"repaired: {repair}")
    print(f"{decision['model']} version {decision['candidate']}: {decision['outcome']}")
    print(
        f"  {metric} on the current test data: candidate {decision['candidate_score']:.4f}, "
        + ("no champion" if champion is None else f"champion (version {champion}) {decision['champion_score']:.4f}")
    )
    print(f"  reason: {decision['reason']}")
    return REFUSED if decision["outcome"] == "refused" else PROMOTED
