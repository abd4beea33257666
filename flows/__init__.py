"""Prefect flows and the `dlfolio` CLI.

Prefect reads its settings when it is first imported, so the embedded defaults are set here, before any
flow module imports it. Values already in the environment (a Prefect server, a user's choice) win.
"""

import os
from pathlib import Path

_DEFAULTS = {
    # A fresh SQLite server runs migrations on its first start: ~20 s here, just over Prefect's default.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_HOME": str(Path.cwd() / ".prefect"),
    "PREFECT_LOGGING_LOG_PRINTS": "true",
    "PREFECT_UI_ENABLED": "false",  # the ephemeral server's UI is never opened; `prefect server start` has its own
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}
for _key, _value in _DEFAULTS.items():
    os.environ.setdefault(_key, _value)
