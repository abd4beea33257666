"""The face-mask flow end to end on real Prefect, MLflow (SQLite) and GX: it learns, registers, and fails safely."""

import json
import shutil

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from components.data.formats.images import load_images, scan_image_folder
from components.validation.expectations import DataValidationError


@pytest.fixture(scope="module")
def trained_run(prefect_server, tmp_path_factory, sample_data):
    """One real run of the default face-mask configuration, shared by the assertions below."""
    import yaml

    from flows.pipeline import project_pipeline
    from tests.conftest import REPO

    root = tmp_path_factory.mktemp("face-mask-root")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = {**params["projects"]["face-mask"], "data_dir": str(sample_data("face-mask"))}
    section.pop("conformal", None), section.pop("active_learning", None)  # their own tests cover those stages
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params["defaults"], "projects": {"face-mask": section}})
    )
    result = project_pipeline(project="face-mask", root=str(root))
    return root, result


@pytest.mark.e2e
def test_flow_learns_far_above_chance(trained_run):
    _, result = trained_run
    # Two balanced classes: chance is 0.5. The default CPU configuration reaches ~0.9 on the sample.
    assert result["accuracy"] >= 0.80
    assert result["roc_auc"] >= 0.90


@pytest.mark.integration
def test_run_is_tracked_with_provenance_params_metrics_and_plots(trained_run):
    _, result = trained_run
    client = MlflowClient()
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["git.commit"] and len(tags["data.md5"]) == 32 and tags["prefect.flow_run_id"]
    assert run.data.params["train.epochs"] and run.data.params["model.name"] == "mask_cnn"
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) >= 2  # per-epoch metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/confusion_matrix.png", "plots/roc_curve.png", "plots/training_curves.png"} <= artifacts
    report = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/validation/report.json"))
    assert report["success"] is True


@pytest.mark.integration
def test_the_flow_run_files_its_test_metrics_as_a_prefect_artifact(trained_run):
    import httpx
    from prefect.settings import PREFECT_API_URL

    _, result = trained_run
    flow_run_id = MlflowClient().get_run(result["run_id"]).data.tags["prefect.flow_run_id"]
    # The REST call itself: Prefect 3.8.8's own client sends nulls this server refuses (422), as `prefect
    # deployment ls` does (README).
    response = httpx.post(
        f"{PREFECT_API_URL.value()}/artifacts/filter",
        json={"artifacts": {"key": {"any_": ["face-mask-results"]}}, "limit": 50},
    )
    response.raise_for_status()
    mine = [a for a in response.json() if a["flow_run_id"] == flow_run_id]
    assert len(mine) == 1 and mine[0]["type"] == "markdown"
    text = mine[0]["data"]
    assert f"version {result['model_version']}" in text and result["run_id"] in text
    assert f"| **f1** | {result['f1']:.4g} |" in text


@pytest.mark.integration
def test_new_version_is_registered_as_challenger_and_serves_predictions(trained_run, sample_data):
    _, result = trained_run
    client = MlflowClient()
    version = client.get_model_version_by_alias("face-mask", "challenger")
    assert str(version.version) == str(result["model_version"])
    assert version.tags["run_id"] == result["run_id"]
    model = mlflow.pyfunc.load_model("models:/face-mask@challenger")
    root = sample_data("face-mask")
    manifest = scan_image_folder(root)
    images = load_images(root, manifest, 64)
    picks = np.r_[0:20, len(images) - 20 : len(images)]
    out = model.predict(images[picks])
    assert list(out.columns[:2]) == ["label", "probability"]
    assert (out["label"].to_numpy() == manifest["label"].to_numpy()[picks]).mean() >= 0.8
    assert model.metadata.signature is not None


@pytest.mark.integration
def test_outputs_for_dvc_are_written(trained_run):
    root, result = trained_run
    out = root / "outputs" / "face-mask"
    every = json.loads((out / "metrics_all.json").read_text())
    assert every["accuracy"] == pytest.approx(result["accuracy"])
    # metrics.json, what git keeps and `dvc metrics show` prints, holds the README row's figures only
    headline = json.loads((out / "metrics.json").read_text())
    assert headline == {k: every[k] for k in ("f1", "train.test", "train.seconds")}
    assert (out / "plots" / "history.csv").exists() and (out / "model" / "best.pt").exists()
    assert not list((root / "outputs").glob(".face-mask.*"))  # no staging directory, nothing set aside


@pytest.mark.integration
def test_bad_data_fails_at_validation_marks_the_run_failed_and_registers_nothing(prefect_server, project_root):
    from flows.pipeline import project_pipeline

    root = project_root("face-mask", {"train": {"epochs": 1}}, copy_data=True)
    data = root / "data" / "face-mask"
    (data / "with_mask" / "broken.png").write_bytes(b"garbage")
    previous = root / "outputs" / "face-mask"
    previous.mkdir(parents=True)
    (previous / "metrics.json").write_text('{"accuracy": 0.9}')  # an earlier run's good outputs
    client = MlflowClient()
    before = {v.version for v in client.search_model_versions("name='face-mask'")}

    with pytest.raises(DataValidationError, match=r"with_mask/broken\.png"):
        project_pipeline(project="face-mask", root=str(root))

    experiment = client.get_experiment_by_name("face-mask")
    [last] = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    assert last.info.status == "FAILED"
    assert "broken.png" in last.data.tags["failure"]
    assert {v.version for v in client.search_model_versions("name='face-mask'")} == before
    # A failed run leaves nothing of its own and keeps the last good outputs: only a successful run replaces them.
    assert (previous / "metrics.json").read_text() == '{"accuracy": 0.9}'
    assert not list((root / "outputs").glob(".face-mask.*"))


@pytest.mark.integration
def test_missing_data_directory_stops_the_cli_with_a_clear_message(prefect_server, project_root, run_cli):
    root = project_root("face-mask", copy_data=True)
    shutil.rmtree(root / "data" / "face-mask")
    code, _, err = run_cli("run", "face-mask", "--root", str(root))
    assert code == 2
    assert "data/face-mask does not exist" in err and "dlfolio data" in err
