"""The promotion gate: `champion` moves only to a candidate that scores better on the current test data.

Two real face-mask versions with a known order are made once for the module: a weak one (one epoch at a tiny
learning rate, near chance) by the project pipeline, and a strong one (eight epochs) by the retrain-and-promote
flow that a cron schedule runs. Each test then sets the champion it needs. Versions are addressed by number, since
other test modules in the session may register face-mask versions too.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]

PROJECT = "face-mask"
WEAK = {"train": {"epochs": 1, "lr": 1e-5, "schedule": "constant"}}
STRONG = {"train": {"epochs": 8}}


def write_params(root, data_dir, train_overrides: dict) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = params["projects"][PROJECT]
    section["train"] = {**section["train"], **train_overrides["train"]}
    section.pop("active_learning", None)  # its rounds are not what is tested here, and they cost minutes
    section["data_dir"] = str(data_dir)
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params.get("defaults", {}), "projects": {PROJECT: section}})
    )


@pytest.fixture(scope="module")
def versions(prefect_server, sample_data, tmp_path_factory):
    """(root, weak version, strong version, their pipeline results); the strong one came via retrain-and-promote."""
    from components.tracking import runs as tracking
    from flows.pipeline import project_pipeline
    from flows.promotion import retrain_and_promote

    root = tmp_path_factory.mktemp("promotion")
    data = root / "data" / PROJECT
    shutil.copytree(sample_data(PROJECT), data)  # a copy: one test relabels it
    tracking.configure(root)
    write_params(root, data, WEAK)
    weak = project_pipeline(project=PROJECT, root=str(root))
    client = MlflowClient()
    client.set_registered_model_alias(PROJECT, "champion", weak["model_version"])
    write_params(root, data, STRONG)
    result = retrain_and_promote(project=PROJECT, root=str(root))
    strong = result["pipeline"]
    assert strong["f1"] > weak["f1"] + 0.15, (weak, strong)  # the known order every test relies on
    return {
        "root": root,
        "weak": str(weak["model_version"]),
        "strong": str(strong["model_version"]),
        "results": {"weak": weak, "strong": strong},
        "scheduled_promotion": result["promotion"],
    }


@pytest.fixture
def client(versions):
    return MlflowClient()


def champion(client) -> str | None:
    version = client.get_registered_model(PROJECT).aliases.get("champion")
    return None if version is None else str(version)


def set_champion(client, version) -> None:
    client.set_registered_model_alias(PROJECT, "champion", str(version))


def tags(client, version) -> dict[str, str]:
    return client.get_model_version(PROJECT, str(version)).tags


@pytest.mark.integration
def test_the_scheduled_flow_promotes_a_retrained_better_version(versions, client):
    decision = versions["scheduled_promotion"]
    assert decision["outcome"] == "promoted"
    assert (decision["candidate"], decision["champion"]) == (versions["strong"], versions["weak"])
    assert "better" in decision["reason"] and "not better" not in decision["reason"]
    # Re-evaluated on the same test data the pipeline used, so it agrees with what the run logged.
    assert decision["candidate_score"] == pytest.approx(versions["results"]["strong"]["f1"], abs=1e-6)
    assert decision["champion_score"] == pytest.approx(versions["results"]["weak"]["f1"], abs=1e-6)


@pytest.mark.integration
def test_a_better_candidate_is_promoted_and_the_decision_recorded(versions, client, run_cli):
    client.delete_registered_model_alias(PROJECT, "champion")
    root = str(versions["root"])

    code, out, _ = run_cli("promote", PROJECT, "--version", versions["weak"], "--root", root)
    assert code == 0 and "promoted" in out and "no champion yet" in out
    assert champion(client) == versions["weak"]

    code, out, _ = run_cli("promote", PROJECT, "--version", versions["strong"], "--root", root)
    assert code == 0, out
    assert f"version {versions['strong']}: promoted" in out and ": better" in out
    assert champion(client) == versions["strong"]
    recorded = tags(client, versions["strong"])
    assert recorded["promotion.decision"] == "promoted"
    assert recorded["promotion.champion_version"] == versions["weak"]
    assert float(recorded["promotion.candidate_score"]) > float(recorded["promotion.champion_score"]) + 0.15
    assert tags(client, versions["weak"])["promotion.replaced_by"] == versions["strong"]


@pytest.mark.integration
def test_a_worse_candidate_is_refused_with_the_reason(versions, client, run_cli):
    set_champion(client, versions["strong"])

    code, out, _ = run_cli("promote", PROJECT, "--version", versions["weak"], "--root", str(versions["root"]))

    assert code == 1, out
    assert "refused" in out and "not better" in out
    assert champion(client) == versions["strong"]
    recorded = tags(client, versions["weak"])
    assert recorded["promotion.decision"] == "refused"
    assert "not better" in recorded["promotion.reason"]
    # and in Prefect's UI, on the promotion's flow run: the newest artifact under the project's promotion key
    import httpx
    from prefect.settings import PREFECT_API_URL

    found = httpx.post(
        f"{PREFECT_API_URL.value()}/artifacts/filter",
        json={"artifacts": {"key": {"any_": [f"{PROJECT}-promotion"]}}, "sort": "CREATED_DESC", "limit": 1},
    ).json()
    assert found and found[0]["data"].startswith(f"# {PROJECT}: promotion refused")
    assert f"| candidate | {versions['weak']} |" in found[0]["data"]


@pytest.mark.integration
def test_force_overrides_the_gate_and_records_why(versions, client, run_cli):
    set_champion(client, versions["strong"])
    root = str(versions["root"])

    with pytest.raises(SystemExit) as usage:  # a forced promotion without a reason is a usage error
        run_cli("promote", PROJECT, "--version", versions["weak"], "--force", "--root", root)
    assert usage.value.code == 2
    assert champion(client) == versions["strong"]

    code, out, _ = run_cli(
        "promote", PROJECT, "--version", versions["weak"], "--force", "--reason", "rollback drill", "--root", root
    )
    assert code == 0 and "forced" in out and "rollback drill" in out
    assert champion(client) == versions["weak"]
    recorded = tags(client, versions["weak"])
    assert recorded["promotion.decision"] == "forced"
    assert "rollback drill" in recorded["promotion.reason"] and "not better" in recorded["promotion.reason"]


@pytest.mark.integration
def test_the_gate_scores_on_the_data_as_it_is_now(versions, client, run_cli, tmp_path):
    from components.tracking.registry import compare

    # Swap the class folders: on this data the strong model is nearly always wrong, whatever its run logged.
    relabelled = tmp_path / "data"
    src = versions["root"] / "data" / PROJECT
    shutil.copytree(src / "with_mask", relabelled / "without_mask")
    shutil.copytree(src / "without_mask", relabelled / "with_mask")
    write_params(tmp_path, relabelled, STRONG)
    set_champion(client, versions["weak"])

    code, out, _ = run_cli("promote", PROJECT, "--version", versions["strong"], "--root", str(tmp_path))

    recorded = tags(client, versions["strong"])
    candidate, champion_ = float(recorded["promotion.candidate_score"]), float(recorded["promotion.champion_score"])
    assert versions["results"]["strong"]["f1"] > 0.8 and candidate < 0.3  # scored now, not read from the run
    assert recorded["promotion.data_md5"] != recorded["data.md5"]  # and the data it was scored on is recorded
    # promoted only if better on today's data and the champion still scores as it did at registration
    drifted = recorded["promotion.drifted"] == "True"
    assert (code == 0) == (compare(candidate, champion_, "f1", True)[0] and not drifted)
    assert recorded["promotion.champion_data_md5"] == tags(client, versions["weak"])["data.md5"]


@pytest.mark.integration
def test_two_racing_promotions_leave_one_champion_chosen_on_fresh_reads(versions, client):
    from components.tracking import registry
    from flows.promotion import load_settings

    spec, settings = load_settings(PROJECT, "params.yaml", versions["root"])
    data = spec.prepare(settings)
    start = threading.Barrier(2)
    decisions, errors = {}, []

    def promote(version: str) -> None:
        try:
            start.wait()
            decisions[version] = registry.promote(
                MlflowClient(),
                PROJECT,
                lambda model: spec.score(model, data, settings)[spec.primary_metric],
                metric=spec.primary_metric,
                higher_is_better=spec.higher_is_better,
                version=version,
            )
        except Exception as exc:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(exc)

    client.delete_registered_model_alias(PROJECT, "champion")
    threads = [threading.Thread(target=promote, args=(v,)) for v in (versions["weak"], versions["strong"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)

    assert not errors, errors
    assert champion(client) == versions["strong"]  # whichever ran first, the better one ends as champion
    weak, strong = decisions[versions["weak"]], decisions[versions["strong"]]
    assert strong.outcome == "promoted"
    # A stale read would let both see "no champion" and both promote; serialised, the second saw the first.
    assert [weak.champion, strong.champion].count(None) == 1
    assert weak.outcome == "refused" or tags(client, versions["weak"])["promotion.replaced_by"] == versions["strong"]


@pytest.mark.integration
def test_models_lists_versions_aliases_metrics_and_decisions(versions, client, run_cli):
    set_champion(client, versions["strong"])

    code, out, _ = run_cli("models", PROJECT, "--root", str(versions["root"]))

    assert code == 0
    assert "test_f1" in out and "aliases" in out and "decision" in out
    aliases = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:] if line.strip()}
    assert "champion" in aliases[versions["strong"]].split(",")
    assert "champion" not in aliases[versions["weak"]].split(",")


@pytest.mark.unit
def test_compare_needs_strictly_better_in_the_metric_direction():
    from components.tracking.registry import compare

    assert compare(0.9, None, "f1", True)[0]
    assert compare(0.9, 0.8, "f1", True)[0] and not compare(0.8, 0.9, "f1", True)[0]
    assert not compare(0.8, 0.8, "f1", True)[0]  # a tie keeps the champion
    assert compare(0.1, 0.2, "rmse", False)[0] and not compare(0.2, 0.1, "rmse", False)[0]


@pytest.mark.integration
def test_promoting_the_champion_again_changes_nothing_and_a_missing_version_is_an_error(versions, client, run_cli):
    set_champion(client, versions["strong"])
    root = str(versions["root"])

    code, out, _ = run_cli("promote", PROJECT, "--version", versions["strong"], "--root", root)
    assert code == 0 and "unchanged" in out and "already holds alias 'champion'" in out
    assert champion(client) == versions["strong"]

    code, _, err = run_cli("promote", PROJECT, "--version", "9999", "--root", root)
    assert code == 2 and "face-mask: no version 9999 in the registry" in err


@pytest.mark.integration
def test_a_scheduled_run_is_tagged_with_the_deployment_runs_id_too(versions, client):
    """The UI lists retrain-and-promote's run; the pipeline is its subflow, so its MLflow run names both."""
    weak = client.get_run(versions["results"]["weak"]["run_id"]).data.tags
    assert weak["prefect.root_flow_run_id"] == weak["prefect.flow_run_id"] and weak["prefect.parent_flow_run_id"] == ""
    strong = client.get_run(versions["results"]["strong"]["run_id"]).data.tags
    assert strong["prefect.root_flow_run_id"] != strong["prefect.flow_run_id"]
    assert strong["prefect.parent_flow_run_id"] == strong["prefect.root_flow_run_id"]


@pytest.mark.integration
def test_the_shared_promotion_lock_is_one_slot_on_the_prefect_server(prefect_server, monkeypatch):
    """Across hosts the lock is the Prefect server's global concurrency limit `dlfolio-promote-P` (limit 1): while
    one holder has it, another times out; released, the other gets it. Chosen only for a team's server."""
    import time

    from prefect.settings import PREFECT_API_URL

    from flows.locks import limit_name, promotion_lock, shared_promotion_lock
    from flows.server import LOCAL_API_ENV

    project = "lock-probe"
    held, release, outcome = threading.Event(), threading.Event(), {}

    def holder() -> None:
        with shared_promotion_lock(project):
            held.set()
            release.wait(60)

    first = threading.Thread(target=holder)
    first.start()
    assert held.wait(60)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        with shared_promotion_lock(project, wait=2):
            outcome["entered"] = True
    assert "entered" not in outcome and time.monotonic() - started >= 2
    release.set()
    first.join(30)
    with shared_promotion_lock(project, wait=30):  # free again
        outcome["after"] = True
    assert outcome == {"after": True}

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        limit = prefect.read_global_concurrency_limit_by_name(limit_name(project))
    assert (limit.limit, limit.active_slots) == (1, 0)

    # Which lock: the file lock without a server URL, or with the server dlfolio started on this host.
    api = PREFECT_API_URL.value()
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert promotion_lock(project) is None
    monkeypatch.setenv("PREFECT_API_URL", api)
    monkeypatch.setenv(LOCAL_API_ENV, api)
    assert promotion_lock(project) is None
    monkeypatch.delenv(LOCAL_API_ENV)
    assert promotion_lock(project) is not None  # a team's server


def test_the_registered_mlmodel_names_the_published_predictor_not_the_runs_staging_folder(versions, client):
    import hashlib

    from mlflow.models import Model

    for version in (versions["weak"], versions["strong"]):
        source = Model.load(f"models:/{PROJECT}/{version}").flavors["python_function"]["artifacts"]["predictor"]
        assert ".partial" not in source["uri"], source
        assert source["uri"].endswith(f"outputs/{PROJECT}/model/predictor.joblib"), source
    # The newest run's published file is the one the strong version was logged from, byte for byte.
    published = Path(source["uri"]) if Path(source["uri"]).is_absolute() else REPO / source["uri"]
    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    assert digest == tags(client, versions["strong"])["predictor.sha256"]
