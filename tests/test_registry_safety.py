"""The registry's safety rules, on real MLflow (SQLite, no server) with real linear-regression predictors.

- the gate refuses when the champion's score on today's data moved far from its score at registration
  (swapped CSV columns pass validation and break the champion; a candidate fitted to them would "win");
- a promotion killed between the alias move and its final tags is completed by the next one; one killed
  before the alias move is rolled back; a version whose run did not finish is never promoted;
- a version stored outside the project's artifact store, or whose predictor file changed after registration,
  is refused before anything is unpickled (the payload below would create a file if it ran);
- `dlfolio promote`'s errors exit 2, before any Prefect server starts.

Each test registers under its own model name (experiment of the same name), so tests do not share champions.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from components.errors import DlfolioError

integration = pytest.mark.integration  # real MLflow on SQLite; no Prefect server, no pipeline

REPO = Path(__file__).resolve().parents[1]
PYFUNC = str(REPO / "components" / "serving" / "pyfunc_model.py")


class Payload:
    """Unpickling this creates ``marker``: proof that a pickle's code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def table(csv: Path) -> pd.DataFrame:
    from components.data.formats.temperatures import read_temperatures

    return read_temperatures(csv)


def rmse(predict, csv: Path) -> float:
    """RMSE of ``predict`` (inputs -> a frame with ``fahrenheit``) on the CSV as it is now."""
    data = table(csv)
    predicted = predict(data[["celsius"]].to_numpy())["fahrenheit"].to_numpy(dtype=float)
    return float(np.sqrt(np.mean((predicted - data["fahrenheit"].to_numpy()) ** 2)))


def rmse_on(csv: Path):
    """The scorer the gate gets: a loaded pyfunc model -> its RMSE on the CSV as it is now."""
    return lambda model: rmse(model.predict, csv)


def fitted(csv: Path):
    from components.scratch.linear import LinearNeuron
    from components.scratch.predictors import RegressionPredictor

    data = table(csv)
    return RegressionPredictor(LinearNeuron(epochs=300).fit(data[["celsius"]].to_numpy(), data["fahrenheit"]))


def register(name: str, root: Path, predictor, data_dir: Path, status: str = "FINISHED") -> str:
    """What the pipeline's register task does, for one predictor: a run with its test metric and data hash, a
    version tagged like the pipeline's (data.md5, primary_metric, test_rmse); the run then ends as ``status``."""
    from components.tracking import runs as tracking

    score = rmse(predictor.predict_frame, data_dir / "temperatures.csv")
    path = root / uuid.uuid4().hex[:8] / "predictor.joblib"  # the pipeline's name
    path.parent.mkdir()
    joblib.dump(predictor, path)
    data_md5 = tracking.directory_md5(data_dir)
    with tracking.parent_run(name, root, "run", {"data.md5": data_md5}) as run:
        mlflow.log_metric("test_rmse", score)
        version = tracking.register(
            name,
            PYFUNC,
            {"predictor": str(path)},
            [],  # the repository is on sys.path here; bundling components/ would only cost seconds
            np.array([[0.0], [100.0]]),
            None,
            tags={"data.md5": data_md5, "primary_metric": "rmse", "test_rmse": f"{score:.6f}"},
        )
    if status != "FINISHED":
        MlflowClient().set_terminated(run.info.run_id, status)
    return str(version.version)


@pytest.fixture
def store(tmp_path, sample_data):
    """(model name, project root, data dir with the linear-regression sample) on the session's MLflow store."""
    import shutil

    from components.tracking import runs as tracking

    data = tmp_path / "data"
    shutil.copytree(sample_data("linear-regression"), data)
    tracking.configure(tmp_path)
    return f"safety-{uuid.uuid4().hex[:8]}", tmp_path, data


def champion(name: str) -> str | None:
    version = MlflowClient().get_registered_model(name).aliases.get("champion")
    return None if version is None else str(version)


def version_tags(name: str, version: str) -> dict[str, str]:
    return MlflowClient().get_model_version(name, version).tags


def gate(name: str, csv: Path, version: str, **kwargs):
    from components.tracking import registry
    from components.tracking import runs as tracking

    return registry.promote(
        MlflowClient(),
        name,
        rmse_on(csv),
        metric="rmse",
        higher_is_better=False,
        version=version,
        data_md5=tracking.directory_md5(csv.parent),
        **kwargs,
    )


# ---- item 3: a champion broken by today's data is not replaced on that data -----------------------------------


@integration
def test_the_gate_refuses_when_todays_data_broke_the_champion_and_names_the_data_change(store):
    from components.tracking import runs as tracking

    name, root, data = store
    csv = data / "temperatures.csv"
    first = register(name, root, fitted(csv), data)
    MlflowClient().set_registered_model_alias(name, "champion", first)
    md5_then = tracking.directory_md5(data)
    swapped = table(csv).rename(columns={"celsius": "fahrenheit", "fahrenheit": "celsius"})
    swapped[["celsius", "fahrenheit"]].to_csv(csv, index=False)  # passes validation's column check
    candidate = register(name, root, fitted(csv), data)  # trained on the swapped columns: it "fits" them

    decision = gate(name, csv, candidate)

    assert decision.candidate_score < decision.champion_score / 10  # on today's data alone it would win
    assert decision.outcome == "refused" and decision.drifted
    assert champion(name) == first
    assert decision.champion_registered_score < 2 < decision.champion_score  # RMSE about 1 F then, >100 now
    assert "at registration" in decision.reason and "the data changed" in decision.reason
    assert md5_then in decision.reason and tracking.directory_md5(data) in decision.reason
    recorded = version_tags(name, candidate)
    assert recorded["promotion.decision"] == "refused" and recorded["promotion.drifted"] == "True"
    assert recorded["promotion.champion_data_md5"] == md5_then

    forced = gate(name, csv, candidate, force=True, reason="the columns were swapped on purpose")
    assert forced.outcome == "forced" and champion(name) == candidate
    assert "the data changed" in forced.reason and "on purpose" in forced.reason


@integration
def test_a_champion_that_scores_as_it_did_at_registration_is_compared_as_before(store):
    name, root, data = store
    csv = data / "temperatures.csv"
    first = register(name, root, fitted(csv), data)
    MlflowClient().set_registered_model_alias(name, "champion", first)
    second = register(name, root, fitted(csv), data)  # the same fit: a tie

    decision = gate(name, csv, second)

    assert not decision.drifted and decision.outcome == "refused" and "a tie keeps the champion" in decision.reason
    assert decision.champion_registered_score == pytest.approx(decision.champion_score, rel=1e-6)


@integration
def test_promoting_the_champion_again_changes_nothing_but_records_the_reason_given(store):
    name, root, data = store
    csv = data / "temperatures.csv"
    first = register(name, root, fitted(csv), data)
    assert gate(name, csv, first).outcome == "promoted"
    decided = version_tags(name, first)

    again = gate(name, csv, first, reason="re-checked after the data audit")

    assert again.outcome == "unchanged" and champion(name) == first
    recorded = version_tags(name, first)
    assert recorded["promotion.checked_reason"] == "re-checked after the data audit"
    assert {k: v for k, v in recorded.items() if not k.startswith("promotion.checked_")} == decided


@pytest.mark.unit
@pytest.mark.parametrize(
    ("then", "now", "tolerance", "moved"),
    [(1.0, 1.05, 0.1, False), (1.0, 1.2, 0.1, True), (0.9, 0.5, 0.1, True), (0.0, 0.05, 0.1, False)],
)
def test_moved_is_relative_to_the_registered_score(then, now, tolerance, moved):
    from components.tracking.registry import moved as moved_

    assert moved_(then, now, tolerance) is moved


@pytest.mark.unit
@pytest.mark.parametrize(
    ("uri", "store", "inside"),
    [
        ("file:///srv/mlruns/artifacts/p/models/m-1/artifacts", "file:///srv/mlruns/artifacts/p", True),
        ("file:///srv/mlruns/artifacts/p/../q/models/m-1", "file:///srv/mlruns/artifacts/p", False),
        ("file:///srv/mlruns/artifacts/p2/models/m-1", "file:///srv/mlruns/artifacts/p", False),
        ("/srv/mlruns/artifacts/p/models/m-1", "file:///srv/mlruns/artifacts/p", True),
        ("mlflow-artifacts:/3/models/m-1/artifacts", "mlflow-artifacts:/3", True),
        ("mlflow-artifacts:/3/../4/models/m-1", "mlflow-artifacts:/3", False),
        ("mlflow-artifacts:/31/models/m-1", "mlflow-artifacts:/3", False),
        ("s3://bucket/evil", "file:///srv/mlruns/artifacts/p", False),
    ],
)
def test_a_store_holds_only_what_lies_under_it(uri, store, inside):
    from components.tracking.registry import lies_within

    assert lies_within(uri, store) is inside


# ---- item 4: a crash leaves no moved alias without its record; only FINISHED runs are promoted -----------------

CRASHING_PROMOTION = """
import json, sys
from mlflow.tracking import MlflowClient

from components.errors import DlfolioError
from components.tracking import registry
name, version, scores = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
registry.promote(MlflowClient(), name, lambda v: scores[v], metric="rmse", higher_is_better=False, version=version,
                 force=True, reason="rollback drill", loader=lambda n, v: v)
"""


def promote_in_a_process_killed_at(point: str, name: str, version: str, scores: dict) -> int:
    env = {**os.environ, "DLFOLIO_CRASH_AT": point, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", CRASHING_PROMOTION, name, version, json.dumps(scores)], env=env, timeout=120
    ).returncode


@integration
def test_a_promotion_killed_after_the_alias_moved_kept_its_record_and_the_next_one_completes_it(store):
    from components.tracking import registry

    name, root, data = store
    csv = data / "temperatures.csv"
    good = register(name, root, fitted(csv), data)
    worse = register(name, root, fitted(csv), data)
    MlflowClient().set_registered_model_alias(name, "champion", good)

    code = promote_in_a_process_killed_at("after_alias", name, worse, {good: 1.0, worse: 1.0})

    assert code == 137 and champion(name) == worse  # killed after the alias moved to the forced, worse version
    recorded = version_tags(name, worse)
    assert recorded["promotion.decision"] == "forced" and "rollback drill" in recorded["promotion.reason"]
    assert recorded["promotion.status"] == "pending"
    assert "promotion.replaced_by" not in version_tags(name, good)

    decision = registry.promote(
        MlflowClient(), name, lambda v: 1.0, metric="rmse", higher_is_better=False, version=good, loader=lambda n, v: v
    )

    assert any(f"version {worse}" in r and "completed" in r for r in decision.repairs), decision.repairs
    assert version_tags(name, worse)["promotion.status"] == "done"
    assert version_tags(name, good)["promotion.replaced_by"] == worse


@integration
def test_a_promotion_killed_before_the_alias_moved_is_rolled_back_by_the_next_one(store):
    from components.tracking import registry

    name, root, data = store
    csv = data / "temperatures.csv"
    good = register(name, root, fitted(csv), data)
    worse = register(name, root, fitted(csv), data)
    MlflowClient().set_registered_model_alias(name, "champion", good)

    assert promote_in_a_process_killed_at("before_alias", name, worse, {good: 1.0, worse: 1.0}) == 137
    assert champion(name) == good and version_tags(name, worse)["promotion.status"] == "pending"

    decision = registry.promote(
        MlflowClient(), name, lambda v: 1.0, metric="rmse", higher_is_better=False, version=good, loader=lambda n, v: v
    )

    assert any(f"version {worse}" in r and "rolled back" in r for r in decision.repairs), decision.repairs
    recorded = version_tags(name, worse)
    assert recorded["promotion.status"] == "rolled_back" and recorded["promotion.decision"] == "interrupted"
    assert champion(name) == good


@integration
@pytest.mark.parametrize("status", ["FAILED", "RUNNING"])
def test_a_version_whose_run_did_not_finish_is_never_promoted(store, status):
    name, root, data = store
    csv = data / "temperatures.csv"
    good = register(name, root, fitted(csv), data)
    MlflowClient().set_registered_model_alias(name, "champion", good)
    broken = register(name, root, fitted(csv), data, status=status)

    for force in (False, True):
        with pytest.raises(DlfolioError, match=f"version {broken} comes from run .* which is {status}"):
            gate(name, csv, broken, force=force, reason="drill" if force else None)
    assert champion(name) == good
    assert "promotion.decision" not in version_tags(name, broken)


# ---- item 7: no code from outside the project's store, and only the predictor that was registered --------------


@integration
def test_a_version_stored_outside_the_project_store_is_refused_before_anything_is_unpickled(store, tmp_path_factory):
    from components.tracking import registry

    name, root, data = store
    csv = data / "temperatures.csv"
    inside = register(name, root, fitted(csv), data)
    outside_dir = tmp_path_factory.mktemp("elsewhere")
    marker = outside_dir / "payload-ran"
    harmless = root / "harmless.joblib"
    joblib.dump(fitted(csv), harmless)
    # Saving loads the model once (MLflow infers a signature), so the payload goes in after the save.
    mlflow.pyfunc.save_model(str(outside_dir / "model"), python_model=PYFUNC, artifacts={"predictor": str(harmless)})
    payload = next((outside_dir / "model").rglob("harmless.joblib"))  # the file the MLmodel names
    joblib.dump(Payload(marker), payload)
    client = MlflowClient()
    run_id = client.get_model_version(name, inside).run_id  # a FINISHED run of the project, borrowed
    evil = client.create_model_version(
        name,
        (outside_dir / "model").as_uri(),
        run_id=run_id,
        tags={"predictor.sha256": hashlib.sha256(payload.read_bytes()).hexdigest()},  # matching proves nothing
    ).version

    with pytest.raises(DlfolioError, match="outside the project's artifact store"):
        registry.load_model(name, str(evil))
    with pytest.raises(DlfolioError, match="outside the project's artifact store"):
        gate(name, csv, str(evil))
    assert not marker.exists()  # no code of the payload ran
    assert champion(name) is None

    assert registry.load_model(name, inside).predict(np.array([[100.0]]))["fahrenheit"][0] == pytest.approx(212, abs=2)

    os.environ["DLFOLIO_TRUSTED_MODEL_STORES"] = outside_dir.as_uri()  # allow-listed: then it loads (and runs)
    try:
        registry.load_model(name, str(evil))
    except Exception:
        pass  # the payload is not a predictor; what matters is that it was let through
    finally:
        del os.environ["DLFOLIO_TRUSTED_MODEL_STORES"]
    assert marker.exists()


@integration
def test_a_predictor_changed_after_registration_is_refused_before_it_is_unpickled(store):
    from components.tracking import registry

    name, root, data = store
    version = register(name, root, fitted(data / "temperatures.csv"), data)
    stored = Path(MlflowClient().get_model_version_download_uri(name, version).removeprefix("file://"))
    predictor = next(stored.rglob("predictor.joblib"))
    marker = root / "payload-ran"
    joblib.dump(Payload(marker), predictor)  # someone with write access to the store swaps the file

    with pytest.raises(DlfolioError, match="predictor.joblib has sha256 .* not the .* recorded"):
        registry.load_model(name, version)
    assert not marker.exists()
    assert len(version_tags(name, version)["predictor.sha256"]) == 64  # recorded at registration


# ---- item 11 (promote): errors exit 2, refusals 1, and --help says so --------------------------------------------


@integration
def test_promote_errors_exit_2_before_prefect_starts(project_root, run_cli):
    root = project_root("linear-regression", copy_data=True)
    data = root / "data" / "linear-regression"
    from components.tracking import runs as tracking

    tracking.configure(root)
    failed = register("linear-regression", root, fitted(data / "temperatures.csv"), data, status="FAILED")

    code, _, err = run_cli("promote", "linear-regression", "--version", failed, "--root", str(root))
    assert code == 2 and f"version {failed} comes from run" in err and "FAILED" in err

    code, _, err = run_cli("promote", "no-such-project", "--root", str(root))
    assert code == 2 and "unknown project 'no-such-project'" in err
    code, _, err = run_cli("promote", "linear-regression", "--version", "99999", "--root", str(root))
    assert code == 2 and "no version 99999" in err


@pytest.mark.unit
def test_promote_help_lists_the_exit_statuses(capsys):
    from flows.cli import main
    from flows.commands import promote

    with pytest.raises(SystemExit) as exit_:
        main(["promote", "--help"])
    text = capsys.readouterr().out
    assert exit_.value.code == 0
    for line in ("0  promoted", "1  refused", "2  error, nothing decided"):
        assert line in text
    assert "--drift-tolerance" in text
    from components.tracking.registry import DRIFT_TOLERANCE

    assert promote.DRIFT_TOLERANCE == DRIFT_TOLERANCE  # a copy, so that building the parser imports no MLflow
    assert (promote.PROMOTED, promote.REFUSED, promote.ERROR) == (0, 1, 2)


# ---- outputs and registry in step: `dlfolio sync` ------------------------------------------------------------


@integration
def test_sync_points_challenger_at_the_version_the_outputs_hold_and_refuses_an_unknown_one(store):
    from components.tracking import registry

    name, root, data = store
    csv = data / "temperatures.csv"
    first = register(name, root, fitted(csv), data)
    second = register(name, root, fitted(csv), data)  # challenger now
    client = MlflowClient()
    run_of_first = client.get_model_version(name, first).run_id

    said = registry.sync_challenger(client, {"model": name, "version": first, "run_id": run_of_first})
    assert f"re-pointed from version {second} to {first}" in said
    assert str(client.get_registered_model(name).aliases["challenger"]) == first
    assert "the one outputs" in registry.sync_challenger(
        client, {"model": name, "version": first, "run_id": run_of_first}
    )

    with pytest.raises(registry.RegistryError, match=r"does not hold; run `dvc repro --force run-"):
        registry.sync_challenger(client, {"model": name, "version": "99", "run_id": run_of_first})
    with pytest.raises(registry.RegistryError, match="came from run"):
        registry.sync_challenger(client, {"model": name, "version": second, "run_id": run_of_first})
