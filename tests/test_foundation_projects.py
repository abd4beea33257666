"""The NumPy foundation projects as pipelines: samples are deterministic and in the real format, loaders and
validation fail with messages that name the problem, each project learns on its sample, and linear-regression
runs end to end through Prefect, MLflow and the registry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from components.data.formats.images import MissingDataError
from components.projects import get_project, settings_schemas
from components.settings import load_project_settings
from components.validation.expectations import DataValidationError
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def close_figures():
    """Evaluations return open matplotlib figures (the flow closes them after logging); so do these tests."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def settings_for(project: str, data_dir: Path, **updates):
    s = load_project_settings(REPO / "params.yaml", project, settings_schemas())
    s = s.model_copy(update={"data_dir": data_dir})
    for section, values in updates.items():  # shrink a section: {"train": {"epochs": 2}}
        s = s.model_copy(update={section: getattr(s, section).model_copy(update=values)})
    return s


def served_after_pickling(predictor, inputs):
    """The registry stores the predictor with joblib: it must round-trip and serve the same frame."""
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(predictor, buffer)
    buffer.seek(0)
    frame = joblib.load(buffer).predict_frame(inputs)
    assert frame.equals(predictor.predict_frame(inputs))
    return frame


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode() + f.read_bytes())
    return h.hexdigest()


@pytest.mark.unit
@pytest.mark.parametrize("project", ["linear-regression", "logistic-regression", "autodiff-mlp"])
def test_samples_are_byte_identical_on_every_run(project, tmp_path, sample_data):
    get_project(project).make_sample(tmp_path / "again")
    assert tree_digest(tmp_path / "again") == tree_digest(sample_data(project))


# ---- linear-regression ----------------------------------------------------------------------------------


@pytest.mark.unit
def test_temperature_csv_is_validated_row_by_row(tmp_path, sample_data):
    root = tmp_path / "data"
    root.mkdir()
    lines = (sample_data("linear-regression") / "temperatures.csv").read_text().splitlines()
    lines[3] = "12.5,warm"  # not a number, line 4
    lines[7] = "-300.00,-508.0"  # colder than absolute zero, line 8
    (root / "temperatures.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as err:
        get_project("linear-regression").validate(settings_for("linear-regression", root))
    message = str(err.value)
    assert "fahrenheit must be a number" in message and "line 4" in message
    assert "celsius in [-273.15" in message and "line 8" in message


@pytest.mark.unit
def test_temperature_loader_names_missing_columns_and_files(tmp_path):
    (tmp_path / "temperatures.csv").write_text("c,f\n1,33.8\n")
    project = get_project("linear-regression")
    with pytest.raises(
        DataValidationError, match=r"missing column\(s\) \['celsius', 'fahrenheit'\]; found \['c', 'f'\]"
    ):
        project.validate(settings_for("linear-regression", tmp_path))
    with pytest.raises(MissingDataError, match="dlfolio data linear-regression"):
        project.validate(settings_for("linear-regression", tmp_path / "nowhere"))


@pytest.mark.integration
def test_linear_regression_flow_end_to_end(prefect_server, project_root):
    import mlflow

    from flows.pipeline import project_pipeline

    root = project_root("linear-regression", {"train": {"log_every": 100}})
    result = project_pipeline(project="linear-regression", root=str(root))
    # acceptance: the neuron recovers the physics from 96 noisy training pairs (32 test, 32 calibration)
    assert result["weight"] == pytest.approx(1.8, abs=0.01)
    assert result["bias"] == pytest.approx(32.0, abs=0.5)
    assert result["rmse"] < 1.6 and result["r2"] > 0.99  # the sample's noise is 1 F
    metrics = json.loads((root / "outputs" / "linear-regression" / "metrics.json").read_text())
    assert metrics["rmse"] == pytest.approx(result["rmse"])
    assert (root / "outputs" / "linear-regression" / "plots" / "fit.png").exists()
    model = mlflow.pyfunc.load_model(f"models:/linear-regression/{result['model_version']}")
    served = model.predict(np.array([[0.0], [100.0]]))
    assert served["fahrenheit"].to_numpy() == pytest.approx([32.0, 212.0], abs=1.0)
    # conformal: calibrated on 32 held-out pairs, the served 90% interval is a few degrees wide around the fit
    assert (served["lower"] < served["fahrenheit"]).all() and (served["fahrenheit"] < served["upper"]).all()
    assert ((served["upper"] - served["lower"]) < 6).all()  # about 2 x 1.645 x 1 F
    run_metrics = mlflow.tracking.MlflowClient().get_run(result["run_id"]).data.metrics
    assert 0.75 <= run_metrics["conformal_absolute_90_coverage"] <= 1.0  # 32 test pairs: a wide band around 0.9
    # A second run publishes over the first: its outputs replace them whole, nothing staged or set aside stays.
    again = project_pipeline(project="linear-regression", root=str(root), overrides={"train.epochs": 50})
    metrics = json.loads((root / "outputs" / "linear-regression" / "metrics.json").read_text())
    assert metrics["rmse"] == pytest.approx(again["rmse"]) and again["rmse"] != result["rmse"]
    assert not list((root / "outputs").glob(".linear-regression.*"))


# ---- logistic-regression --------------------------------------------------------------------------------


@pytest.mark.unit
def test_logistic_sample_has_the_catvnoncat_layout(sample_data):
    import h5py

    root = sample_data("logistic-regression")
    with h5py.File(root / "train_catvnoncat.h5") as fh:
        assert set(fh) == {"train_set_x", "train_set_y", "list_classes"}
        assert fh["train_set_x"].shape[1:] == (64, 64, 3) and fh["train_set_x"].dtype == np.uint8
        assert [c.decode() for c in fh["list_classes"][()]] == ["non-face", "face"]
    with h5py.File(root / "test_catvnoncat.h5") as fh:
        assert set(fh) == {"test_set_x", "test_set_y", "list_classes"} and len(fh["test_set_y"]) == 50


@pytest.mark.e2e  # trains the project through its stages to a quality threshold
def test_logistic_regression_learns_faces_vs_non_faces(sample_data, tmp_path):
    project = get_project("logistic-regression")
    settings = settings_for("logistic-regression", sample_data("logistic-regression"), train={"iterations": 400})
    project.validate(settings)
    data = project.prepare(settings)
    seen = []
    trained = project.train(data, settings, on_epoch=seen.append, checkpoint_dir=tmp_path)
    evaluation = project.evaluate(trained, data, settings)
    assert evaluation.metrics["accuracy"] >= 0.85  # balanced test set: chance is 0.5
    costs = trained.history["cost"].to_numpy()
    assert (np.diff(costs) < 0).all()  # the cost curve only goes down at this learning rate
    assert "cost_curve" in evaluation.figures and seen[-1]["epoch"] == 400
    predictor, example = project.predictor(trained, data, settings)
    frame = served_after_pickling(predictor, np.repeat(example, 2, axis=1)[:, :, ::2])  # other sizes are resized
    assert list(frame.columns) == ["label", "probability", "p_non-face", "p_face"]


@pytest.mark.unit
def test_logistic_loader_rejects_a_wrong_layout(tmp_path, sample_data):
    import shutil

    import h5py

    shutil.copy(sample_data("logistic-regression") / "test_catvnoncat.h5", tmp_path)
    with h5py.File(tmp_path / "train_catvnoncat.h5", "w") as fh:
        fh["images"] = np.zeros((3, 64, 64, 3), np.uint8)
    with pytest.raises(
        DataValidationError, match=r"missing dataset\(s\) \['train_set_x', 'train_set_y', 'list_classes'\]"
    ):
        get_project("logistic-regression").validate(settings_for("logistic-regression", tmp_path))
    with h5py.File(tmp_path / "train_catvnoncat.h5", "w") as fh:
        fh["train_set_x"] = np.random.default_rng(0).integers(0, 255, (40, 32, 32, 3), dtype=np.uint8)
        fh["train_set_y"] = np.r_[np.zeros(20, int), np.ones(20, int)]
        fh["list_classes"] = np.array([b"non-cat", b"cat"])
    with pytest.raises(DataValidationError, match=r"images are 64 px high -> train \(train_catvnoncat.h5\)"):
        get_project("logistic-regression").validate(settings_for("logistic-regression", tmp_path))


# ---- autodiff-mlp ---------------------------------------------------------------------------------------


@pytest.mark.e2e  # trains the project through its stages to a quality threshold
def test_autodiff_mlp_learns_digits_from_the_image_folder(sample_data, tmp_path):
    project = get_project("autodiff-mlp")
    root = sample_data("autodiff-mlp")
    assert sorted(p.name for p in root.iterdir()) == [str(d) for d in range(10)]
    settings = settings_for("autodiff-mlp", root, train={"epochs": 4})
    report = project.validate(settings)
    assert report.success and report.rows == 1797
    data = project.prepare(settings)
    trained = project.train(data, settings, on_epoch=lambda e: None, checkpoint_dir=tmp_path)
    evaluation = project.evaluate(trained, data, settings)
    assert evaluation.metrics["accuracy"] >= 0.85  # ten classes: chance is 0.1
    predictor, example = project.predictor(trained, data, settings)
    big = np.kron(example, np.ones((1, 4, 4), np.uint8))  # 32x32 versions of the same digits
    assert (served_after_pickling(predictor, big)["label"] == predictor.predict_frame(example)["label"]).all()


# ---- numpy-dnn ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion_subset(tmp_path_factory):
    """The real Fashion-MNIST files, cut to a few thousand images so the tests stay fast."""
    from components.projects.numpy_dnn import IdxSplits

    root = tmp_path_factory.mktemp("numpy-dnn")
    project = get_project("numpy-dnn")
    project.make_sample(root)
    settings = settings_for("numpy-dnn", root)
    project.validate(settings)
    full = project.prepare(settings)
    return settings, IdxSplits(
        full.X_train[:8000],
        full.y_train[:8000],
        full.X_val[:1000],
        full.y_val[:1000],
        full.X_test[:2000],
        full.y_test[:2000],
    )


@pytest.mark.e2e  # trains the project through its stages to a quality threshold
def test_numpy_dnn_learns_and_its_gradients_check(fashion_subset, tmp_path):
    settings, data = fashion_subset
    project = get_project("numpy-dnn")
    small = settings.model_copy(
        update={
            "model": settings.model.model_copy(update={"hidden": (64,)}),
            "train": settings.train.model_copy(update={"epochs": 3, "keep_prob": 0.9, "l2": 0.5}),
            "comparisons": settings.comparisons.model_copy(update={"enabled": False}),
        }
    )
    trained = project.train(data, small, on_epoch=lambda e: None, checkpoint_dir=tmp_path)
    evaluation = project.evaluate(trained, data, small)
    assert evaluation.metrics["accuracy"] >= 0.75  # ten classes: chance is 0.1 (the full run reaches ~0.88)
    assert evaluation.metrics["gradcheck_max_relative_error"] < 1e-7  # float64, with L2 and dropout on
    assert (tmp_path / "weights.npz").exists()
    frame = served_after_pickling(project.predictor(trained, data, small)[0], data.X_test[:3])
    assert frame["label"].isin(settings.data.class_names).all()


@pytest.mark.unit
def test_numpy_dnn_comparisons_become_child_runs_with_plots(fashion_subset):
    from components.projects.numpy_dnn import NumpyDNN

    settings, data = fashion_subset
    c = settings.comparisons.model_copy(
        update={
            "train_size": 2000,
            "val_size": 500,
            "epochs": 3,
            "hidden": (32, 16),
            "regularization_train_size": 300,
            "regularization_epochs": 20,
        }
    )
    small = settings.model_copy(update={"comparisons": c})
    from components.evaluation.report import Report

    evaluation = Report({})
    NumpyDNN()._compare(evaluation, data, small)
    by_name = {child.name: child for child in evaluation.children}
    assert len(by_name) == 4 + 5 + 3 + 4
    assert {"compare_init", "compare_optimizer", "compare_regularization", "compare_lr_decay"} <= set(
        evaluation.figures
    )
    for child in evaluation.children:
        assert len(child.history) == child.params["epochs"] and "val_accuracy" in child.metrics
    # behaviour the notebooks teach: zeros never break symmetry (chance level); He init learns
    assert by_name["init: zeros"].metrics["val_accuracy"] < 0.25
    assert by_name["init: he"].metrics["val_accuracy"] > 0.6
    # on 300 images the unregularised net fits its training set better than it generalises
    assert by_name["regularization: none"].metrics["generalization_gap"] > 0.05
    assert len(evaluation.tables["comparisons"]) == 16


@pytest.mark.unit
def test_numpy_dnn_names_missing_idx_files(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(MissingDataError, match="train-labels-idx1-ubyte.gz"):
        get_project("numpy-dnn").validate(settings_for("numpy-dnn", tmp_path))


# ---- promotion ---------------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    "project, overrides",
    [
        ("linear-regression", {"train": {"log_every": 100}}),
        ("logistic-regression", {"train": {"iterations": 300}}),
        ("autodiff-mlp", {"train": {"epochs": 2}}),
        ("numpy-dnn", {"train": {"epochs": 1}, "comparisons": {"enabled": False}}),
    ],
)
def test_the_gate_scores_the_registered_model_as_the_pipeline_measured_it_and_promotes_it(
    project, overrides, prefect_server, project_root
):
    from mlflow import MlflowClient

    from flows.pipeline import project_pipeline
    from flows.promotion import promote_model  # what `dlfolio promote` runs

    root = project_root(project, overrides)
    result = project_pipeline(project=project, root=str(root))
    decision = promote_model(project=project, root=str(root))
    assert decision["outcome"] == "promoted" and str(decision["candidate"]) == str(result["model_version"]), decision
    metric = get_project(project).primary_metric
    assert decision["metric"] == metric
    assert decision["candidate_score"] == pytest.approx(result[metric], abs=1e-4)  # score() on the served model
    assert MlflowClient().get_model_version_by_alias(project, "champion").version == result["model_version"]
