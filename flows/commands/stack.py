"""dlfolio stack: a team's servers on this machine (PostgreSQL, S3, MLflow, Prefect and a worker), on 127.0.0.1."""

DESCRIPTION = """\
A team's stack on one machine, every port on 127.0.0.1, state in ./.stack (DLFOLIO_STACK_DIR moves it):

  postgres  PostgreSQL 15: MLflow's and Prefect's databases
  s3        moto's S3 server (own venv, .stack/moto-venv): MLflow's artifacts, the DVC remote `stack`
  mlflow    the MLflow tracking server (backend PostgreSQL, artifacts proxied to s3://dlfolio/mlflow)
  prefect   the Prefect server (PostgreSQL) with the process work pool `dlfolio`
  worker    a `prefect worker` on that pool, in this checkout

  up      start what is not running, keep what is, and print the environment to export
  status  each service: running or not (exit 1 unless all run)
  down    stop every process the stack started (its data stays in .stack/; moto's S3 is in memory and goes)
"""


def register(sub) -> None:
    import argparse

    p = sub.add_parser(
        "stack",
        help="start, stop or show a local team stack (PostgreSQL, S3, MLflow and Prefect servers, a worker)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=("up", "status", "down"), metavar="ACTION", help="up, status or down")
    p.add_argument("--root", default=".", help="the checkout the worker runs flows from (default: cwd)")
    p.add_argument("--quiet", "-q", action="store_true", help="up: print only the exports")
    p.set_defaults(func=main)


def main(args) -> int:
    import sys
    from pathlib import Path

    from flows import stack as local

    root = Path(args.root).resolve()
    if args.action == "up":
        progress = (lambda *_: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
        stack = local.up(root, say=progress)
        progress("the stack is up; for `make run`, `dlfolio ...` and `dvc push -r stack` in this shell:")
        for key, value in stack.exports().items():
            print(f"export {key}={value}")
        return 0
    if args.action == "status":
        states = local.status(root)
        for service, running in states.items():
            print(f"{service}: {'running' if running else 'not running'}")
        return 0 if all(states.values()) else 1
    stopped = local.down(root)
    if not stopped:
        print("stack: nothing was running")
    return 0
