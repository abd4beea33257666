"""dlfolio server: the long-lived local Prefect server that `dlfolio run` (and so every `dvc repro` stage) reuses."""

DESCRIPTION = """\
The first command that runs a flow (run, sweep, promote, schedule) starts a Prefect server in the background
in PREFECT_HOME (default ./.prefect) with its UI, unless PREFECT_API_URL is set; later commands reuse it.

  start    start it now if it is not running, and print its API and UI addresses
  status   print its addresses (exit 0), or say that none runs (exit 1)
  stop     stop it (`make run` does at the end)
"""


def register(sub) -> None:
    import argparse

    p = sub.add_parser(
        "server",
        help="start, stop or show the background Prefect server the pipelines share",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=("start", "status", "stop"), metavar="ACTION", help="start, status or stop")
    p.add_argument("--port", type=int, help="port for `start` (default: 4200 if free, else any free port)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing; the exit status says it (status)")
    p.set_defaults(func=main)


def main(args) -> int:
    from flows import server as local

    home = local.prefect_home()
    say = (lambda *_: None) if args.quiet else print
    if args.action == "start":
        server, started = local.start_server(home, port=args.port)
        say(
            f"Prefect server {'started' if started else 'already running'} (pid {server.pid}, home {home}): "
            f"UI {server.ui_url}, API {server.api_url}"
        )
        return 0
    if args.action == "status":
        server = local.find_server(home)
        if server is None:
            say(f"no dlfolio Prefect server runs for {home}")
            return 1
        say(f"Prefect server running (pid {server.pid}, home {home}): UI {server.ui_url}, API {server.api_url}")
        return 0
    server = local.stop_server(home)
    say(f"stopped the Prefect server (pid {server.pid})" if server else f"no dlfolio Prefect server runs for {home}")
    return 0
