"""Prefect flows and the `dlfolio` CLI.

Prefect reads its settings when it is first imported, so the embedded defaults are set here, before any
flow module imports it. Values already in the environment (a Prefect server, a user's choice) win.

The CLI's flow commands point Prefect at one long-lived local server in PREFECT_HOME (flows/server.py); the
startup timeout and the UI switch below concern the temporary server Prefect starts when it is used without
one (in-process callers such as the tests).
"""

import os
from pathlib import Path

_DEFAULTS = {
    # A fresh SQLite server runs migrations on its first start: ~20 s here, just over Prefect's default.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The client's own telemetry, which the server switch does not cover: in a terminal Prefect would send
    # usage events and print its "anonymous usage data ... Learn more: https://docs.prefect.io/..." notice.
    "DO_NOT_TRACK": "1",
    "PREFECT_HOME": str(Path.cwd() / ".prefect"),  # the same as prefect.toml's, for `prefect server start` here
    "PREFECT_LOGGING_LOG_PRINTS": "true",
    "PREFECT_UI_ENABLED": "false",  # a temporary server's UI is never opened; flows/server.py's has one
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}
for _key, _value in _DEFAULTS.items():
    os.environ.setdefault(_key, _value)
