"""What `dlfolio promote` can refuse before it starts Prefect, loads data or unpickles a model.

Imports no Prefect: the CLI calls ``preflight`` before ``use_prefect()`` starts the shared server, so a wrong
project, params file or version, a version from a run that did not finish, or one stored outside the project's
artifact store is reported at once (exit 2). The promote-model flow calls it too.
"""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from components.projects import Project, get_project, settings_schemas
from components.settings import ProjectSettings, load_project_settings
from components.tracking import registry
from components.tracking import runs as tracking


def load_settings(project: str, params: str, root: Path) -> tuple[Project, ProjectSettings]:
    """The project and its settings, with a relative ``data_dir`` taken from ``root`` (as the pipeline does)."""
    spec = get_project(project)
    settings = load_project_settings(root / params, project, settings_schemas())
    if not settings.data_dir.is_absolute():
        settings = settings.model_copy(update={"data_dir": root / settings.data_dir})
    return spec, settings


def preflight(project: str, version: int | None, params: str, root: Path) -> str:
    """The candidate version, once the project, its settings, the version, its run (FINISHED) and the place of
    its artifacts (a trusted store) are checked; raises a ``DlfolioError`` saying what is wrong."""
    spec, settings = load_settings(project, params, root)
    tracking.configure(root)
    client = MlflowClient()
    candidate = registry.resolve_candidate(client, spec.name, version)
    registry.check_finished(client, spec.name, candidate)
    registry.check_trusted(client, spec.name, candidate, settings.experiment or spec.name)
    return candidate
