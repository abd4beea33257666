"""dlfolio's building blocks: plain Python that takes data and returns data (no Prefect in here)."""

import os

# Offline means offline. MLflow decides on its telemetry when it is first imported, and any component may be
# the first to import it, so the switch is set here, before that; a user's own setting wins. (DVC's analytics
# are off in .dvc/config, Prefect's in prefect.toml and flows/__init__.py.)
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
