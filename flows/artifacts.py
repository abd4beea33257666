"""What each flow run leaves in Prefect's UI for an operator: a markdown artifact of its results.

A pipeline run shows its test metrics (the primary one first), the registered version and a link to its MLflow
run; a promotion shows the decision, both scores and why. The markdown is built by plain functions (tested
without a server); ``publish`` files it on the current flow run.
"""

from __future__ import annotations

from collections.abc import Mapping


def mlflow_run_link(tracking_uri: str, experiment_id: str, run_id: str, ui: str = "http://127.0.0.1:5000") -> str:
    """The run's page: on the tracking server itself, or in `dlfolio ui`'s default address for the embedded store."""
    base = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else ui
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def pipeline_markdown(
    project: str,
    metrics: Mapping[str, float],
    primary: str,
    run_link: str,
    model_version: str | None,
    provenance: Mapping[str, str],
) -> str:
    names = [primary, *sorted(k for k in metrics if k != primary)]
    rows = "\n".join(f"| {'**' + k + '**' if k == primary else k} | {_number(metrics[k])} |" for k in names)
    registered = (
        f"Registered as `{project}` version {model_version} (alias `challenger`)."
        if model_version
        else "Not registered (a sweep trial or `register_model=False`)."
    )
    facts = ", ".join(f"{k} `{v}`" for k, v in provenance.items())
    return (
        f"# {project}: test metrics\n\n{registered} [MLflow run]({run_link})\n\n"
        f"| metric | value |\n|---|---|\n{rows}\n\n{facts}\n"
    )


def promotion_markdown(decision: Mapping) -> str:
    def score(x) -> str:
        return "none" if x is None else f"{x:.6g}"

    return (
        f"# {decision['model']}: promotion {decision['outcome']}\n\n"
        f"| | version | {decision['metric']} |\n|---|---|---|\n"
        f"| candidate | {decision['candidate']} | {score(decision['candidate_score'])} |\n"
        f"| champion before | {decision['champion'] or 'none'} | {score(decision['champion_score'])} |\n\n"
        f"{decision['reason']}\n"
    )


def publish(key: str, markdown: str, description: str) -> None:
    """File ``markdown`` on the running flow run (Prefect's Artifacts tab); keys are lower-case with dashes."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=markdown, key=key.lower().replace("_", "-"), description=description)
