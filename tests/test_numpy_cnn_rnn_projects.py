"""numpy-cnn and numpy-rnn as pipelines: real-format samples, validation that names the bad file or line, and
shrunk end-to-end runs on real Prefect, MLflow (SQLite) and GX that learn, log comparisons and register a
model that serves."""

from __future__ import annotations

import hashlib
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image

from components.data.formats.images import MissingDataError
from components.data.formats.name_lines import NameRules, read_lines, validate_names
from components.projects import get_project
from components.validation.expectations import DataValidationError

CNN_SMALL = {  # ~2 s of training per network on the 1797 digits
    "model": {"blocks": [{"filters": 8, "pool": "max"}, {"filters": 16, "pool": "avg"}], "hidden": [32]},
    "train": {"epochs": 6, "lr": 0.005, "decay": "none"},
}
RNN_SMALL = {
    "model": {"cell": "lstm", "hidden_size": 32},
    "train": {"epochs": 3},
    "sampling": {"count": 200, "table_count": 5},
    "compare_cells": ["rnn"],
}


def served_score(root, project: str, model) -> dict:
    """What the promotion gate sees: the project's own scorer on the served model and the current test split."""
    from flows.promotion import load_settings

    spec, settings = load_settings(project, "params.yaml", root)
    return spec.score(model, spec.prepare(settings), settings)


def run_pipeline(root, project: str, data_dir, overrides: dict) -> dict:
    from flows.pipeline import project_pipeline
    from tests.conftest import REPO, deep_merge

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = deep_merge(params["projects"][project], overrides) | {"data_dir": str(data_dir)}
    (root / "params.yaml").write_text(yaml.safe_dump({"defaults": params["defaults"], "projects": {project: section}}))
    return project_pipeline(project=project, root=str(root))


# --- samples and validation -------------------------------------------------------------------------------


@pytest.mark.unit
def test_digits_sample_is_an_image_folder_of_real_8x8_grayscale_digits(sample_data):
    root = sample_data("numpy-cnn")
    files = sorted(root.glob("*/*.png"))
    assert len(files) == 1797 and sorted(p.name for p in root.iterdir()) == [str(d) for d in range(10)]
    with Image.open(files[0]) as im:
        assert im.size == (8, 8) and im.mode == "L"
    again = get_project("numpy-cnn").make_sample(root.parent / "digits-again")
    assert again["images"] == 1797
    digest = lambda p: hashlib.md5(p.read_bytes()).hexdigest()  # noqa: E731
    assert all(digest(f) == digest(root.parent / "digits-again" / f.relative_to(root)) for f in files[::97])


@pytest.mark.unit
def test_names_sample_is_one_lowercase_census_name_per_line_and_deterministic(sample_data, tmp_path):
    path = sample_data("numpy-rnn") / "names.txt"
    names = read_lines(path)
    assert len(names) > 5000 and {"mary", "james", "linda"} <= set(names)
    assert all(n.isalpha() and n.islower() for n in names) and len(set(names)) == len(names)
    get_project("numpy-rnn").make_sample(tmp_path)
    assert (tmp_path / "names.txt").read_bytes() == path.read_bytes()


@pytest.mark.unit
def test_a_broken_digit_folder_fails_validation_naming_the_files(project_root):
    from components.projects import settings_schemas
    from components.settings import load_project_settings

    root = project_root("numpy-cnn", copy_data=True)
    data = root / "data" / "numpy-cnn"
    (data / "3" / "notes.txt").write_text("not an image")
    (data / "x").mkdir()
    shutil.copy(data / "1" / "0001.png", data / "x" / "0001.png")
    settings = load_project_settings(root / "params.yaml", "numpy-cnn", settings_schemas())
    with pytest.raises(DataValidationError) as err:
        get_project("numpy-cnn").validate(settings)
    message = str(err.value)
    assert "3/notes.txt" in message and "x/0001.png" in message and "duplicate" in message


@pytest.mark.unit
def test_a_bad_names_file_fails_validation_naming_the_lines(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("anna\n\nbob3\nanna\n" + "".join(f"{'ab' * (i % 5 + 1)}{chr(97 + i % 26)}x\n" for i in range(20)))
    with pytest.raises(DataValidationError) as err:
        validate_names(path, NameRules("abcdefghijklmnopqrstuvwxyz", min_names=100))
    message = str(err.value)
    assert "line 2: ''" in message  # empty line
    assert "line 3: 'bob3'" in message  # a digit is not in the alphabet
    assert "line 1: 'anna'" in message and "line 4: 'anna'" in message  # duplicates
    assert "at least 100 names" in message


@pytest.mark.unit
def test_names_loader_errors_say_what_and_where(tmp_path):
    with pytest.raises(MissingDataError, match="dlfolio data numpy-rnn"):
        read_lines(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("anna\nb\xe9a\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"line 2 is not UTF-8"):
        read_lines(tmp_path / "latin1.txt")


# --- numpy-cnn end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn_run(prefect_server, tmp_path_factory, sample_data):
    root = tmp_path_factory.mktemp("numpy-cnn-root")
    return root, run_pipeline(root, "numpy-cnn", sample_data("numpy-cnn"), CNN_SMALL)


@pytest.mark.e2e
def test_numpy_cnn_learns_digits_far_above_chance_and_compares_pooling(cnn_run):
    _, result = cnn_run
    assert result["accuracy"] >= 0.9  # chance 0.1; the default (bigger, longer) configuration reaches ~0.97
    assert result["accuracy_pool_max"] >= 0.85 and result["accuracy_pool_avg"] >= 0.85
    client = MlflowClient()
    run = client.get_run(result["run_id"])
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    arms = [
        c for c in children if not c.info.run_name.startswith("conformal-")
    ]  # the conformal stage's: one per method
    assert sorted(c.info.run_name for c in arms) == ["pool=avg", "pool=max"]
    assert sorted(c.info.run_name for c in children if c not in arms) == ["conformal-aps", "conformal-lac"]
    assert all(len(client.get_metric_history(c.info.run_id, "val_loss")) == 6 for c in arms)
    assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 6


@pytest.mark.integration
def test_numpy_cnn_model_is_registered_and_serves_digit_images(cnn_run, sample_data):
    root, result = cnn_run
    version = MlflowClient().get_model_version_by_alias("numpy-cnn", "challenger")
    assert str(version.version) == str(result["model_version"])
    model = mlflow.pyfunc.load_model("models:/numpy-cnn@challenger")
    files = sorted(sample_data("numpy-cnn").glob("*/*.png"))[::30]
    images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    out = model.predict(images)
    truth = np.array([f.parent.name for f in files])
    assert (out["label"].to_numpy() == truth).mean() >= 0.9
    np.testing.assert_allclose(out[[f"p_{d}" for d in range(10)]].sum(axis=1), 1, atol=1e-6)
    assert served_score(root, "numpy-cnn", model)["accuracy"] == pytest.approx(result["accuracy"])


# --- numpy-rnn end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rnn_run(prefect_server, tmp_path_factory, sample_data):
    root = tmp_path_factory.mktemp("numpy-rnn-root")
    return root, run_pipeline(root, "numpy-rnn", sample_data("numpy-rnn"), RNN_SMALL)


@pytest.mark.e2e
def test_char_lm_beats_the_unigram_baseline_and_samples_mostly_new_names(rnn_run):
    _, result = rnn_run
    # unigram ~2.8 nats/char on the census names; 3 epochs of a 32-unit LSTM reach ~2.1
    assert result["loss"] < result["unigram_loss"] - 0.3, (result["loss"], result["unigram_loss"])
    assert result["novel_fraction"] >= 0.6  # "mostly new": not copies of the training list
    assert result["heldout_name_fraction"] < 0.4 and result["empty_sample_fraction"] < 0.05
    assert result["loss_rnn"] < result["unigram_loss"]


@pytest.mark.integration
def test_char_lm_run_logs_loss_curve_samples_and_a_cell_comparison(rnn_run):
    root, result = rnn_run
    client = MlflowClient()
    run = client.get_run(result["run_id"])
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 3
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/loss_curve.png", "plots/cells.png"} <= plots
    samples = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/tables/samples.csv"), keep_default_na=False
    )
    assert set(samples["temperature"]) == {0.5, 1.0, 1.5} and len(samples) == 15
    history = pd.read_csv(root / "outputs" / "numpy-rnn" / "plots" / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3] and "sample" in history
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert [c.info.run_name for c in children] == ["cell=rnn"]


@pytest.mark.integration
def test_char_lm_is_registered_and_completes_prefixes(rnn_run):
    root, result = rnn_run
    assert MlflowClient().get_model_version_by_alias("numpy-rnn", "challenger").version == result["model_version"]
    model = mlflow.pyfunc.load_model("models:/numpy-rnn@challenger")
    frame = pd.DataFrame({"prefix": ["", "Ma", "jo", "mary"]})
    out = model.predict(frame)
    assert list(out.columns) == ["prefix", "name", "score"]
    assert out["name"][1].startswith("ma") and out["name"][2].startswith("jo")
    assert out["score"][3] < out["score"][0]  # "mary" is more name-like than the empty name
    pd.testing.assert_frame_equal(model.predict(frame), out)  # seeded: same input, same names
    five = model.predict(pd.DataFrame({"prefix": [""] * 5}))["name"]
    assert five.nunique() > 1  # each row draws its own name
    assert served_score(root, "numpy-rnn", model)["loss"] == pytest.approx(result["loss"], rel=1e-5)
