"""dlfolio runner: a background process with the libraries imported, which runs each `dlfolio run` forked."""

DESCRIPTION = """\
`dlfolio run` spends 6-7 s of CPU importing torch, MLflow, Prefect, scikit-learn and Great Expectations before
its flow starts. A runner imports them once; with DLFOLIO_RUNNER set to its socket, each `dlfolio run` (and so
each `dvc repro` stage) is forked from it and writes to the caller's own stdout and stderr, with the same exit
status and signals. `make run` starts one and stops it at the end. A caller whose Prefect settings differ from
the runner's runs in its own process, as without a runner.

  start    start it (and the Prefect server) for the project root if none runs; print the export line
  status   say whether one runs (exit 0) or not (exit 1)
  stop     stop it

example:
  eval "$(dlfolio runner start --quiet)" && dvc repro; dlfolio runner stop
"""


def register(sub) -> None:
    import argparse

    p = sub.add_parser(
        "runner",
        help="start, stop or show the warm runner that forks each `dlfolio run` (what `make run` uses)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=("start", "status", "stop"), metavar="ACTION", help="start, status or stop")
    p.add_argument("--root", default=".", help="project root (default: cwd)")
    p.add_argument("--quiet", "-q", action="store_true", help="start: print only the export line; else nothing")
    p.set_defaults(func=main)


def main(args) -> int:
    from pathlib import Path

    from flows import runner

    root = Path(args.root).resolve()
    say = (lambda *_: None) if args.quiet else print
    if args.action == "start":
        pid, started = runner.start_runner(root)
        say(
            f"runner {'started' if started else 'already running'} (pid {pid}); log {root / runner.STATE_DIR / runner.LOG_NAME}"
        )
        print(f"export {runner.SOCKET_ENV}={runner.socket_path(root)}")
        return 0
    if args.action == "status":
        pid = runner.find_runner(root)
        say(f"runner running (pid {pid}) on {runner.socket_path(root)}" if pid else f"no runner for {root}")
        return 0 if pid else 1
    pid = runner.stop_runner(root)
    say(f"stopped the runner (pid {pid})" if pid else f"no runner for {root}")
    return 0
