"""The array-format vision projects: mnist-dnn, happy-house (h5), their loaders, samples and validation.

mnist-mc-dropout is specified in test_uncertainty.py and resnet50 in test_resnet50.py.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from components.data.formats.arrays import ArrayFormatError
from components.data.formats.h5_images import load_h5_parts, read_h5_split
from components.data.formats.images import MissingDataError
from components.data.samples import happy_house as happy_house_sample
from components.data.samples import signs as signs_sample
from components.projects import get_project
from components.projects.base import Project
from components.validation.expectations import DataValidationError

REPO = Path(__file__).resolve().parents[1]


def settings_for(project_name: str, data_dir: Path, **overrides):
    """The project's params.yaml section with ``data_dir`` and shallow per-section overrides."""
    project = get_project(project_name)
    section = yaml.safe_load((REPO / "params.yaml").read_text())["projects"][project_name]
    section.update(data_dir=str(data_dir), device="cpu")
    for key, value in overrides.items():
        section[key] = {**section[key], **value} if isinstance(value, dict) else value
    return project, project.Settings.model_validate(section)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.unit
@pytest.mark.parametrize("generate, stem", [(happy_house_sample.generate, "happy"), (signs_sample.generate, "signs")])
def test_h5_samples_are_byte_identical_on_every_run(tmp_path, generate, stem):
    first, second = tmp_path / "a", tmp_path / "b"
    generate(first), generate(second)
    assert digest(first) == digest(second)
    assert set(digest(first)) == {f"train_{stem}.h5", f"test_{stem}.h5"}


@pytest.mark.unit
@pytest.mark.parametrize(
    "project_name, stem, shape, classes",
    [
        ("happy-house", "happy", (64, 64, 3), [0, 1]),
        ("resnet50", "signs", (64, 64, 3), [0, 1, 2, 3, 4, 5]),
    ],
)
def test_h5_samples_have_the_course_layout(sample_data, project_name, stem, shape, classes):
    folder = sample_data(project_name)
    with h5py.File(folder / f"train_{stem}.h5") as fh:
        assert set(fh) == {"train_set_x", "train_set_y", "list_classes"}
        assert fh["train_set_x"].shape[1:] == shape and fh["train_set_x"].dtype == np.uint8
        assert fh["list_classes"][()].tolist() == classes
    parts = load_h5_parts(folder, stem)
    for part in parts.values():
        counts = np.bincount(part.labels, minlength=len(classes))
        assert counts.min() > 0.5 * counts.max()  # every class present and roughly balanced


@pytest.mark.unit
def test_h5_loader_names_a_missing_key_and_a_wrong_shape(tmp_path):
    bad = tmp_path / "train_happy.h5"
    with h5py.File(bad, "w") as fh:
        fh["train_set_x"] = np.zeros((4, 64, 64, 3), np.uint8)
        fh["list_classes"] = np.array([0, 1])
    with pytest.raises(
        ArrayFormatError,
        match=r"train_happy.h5: missing key\(s\) train_set_y; the file holds "
        r"list_classes, train_set_x",
    ):
        read_h5_split(bad, "train")
    with h5py.File(bad, "w") as fh:
        fh["train_set_x"] = np.zeros((4, 64, 64), np.uint8)  # no channel axis
        fh["train_set_y"] = np.zeros(4, np.int64)
        fh["list_classes"] = np.array([0, 1])
    with pytest.raises(
        ArrayFormatError, match=r"train_set_x has shape \(4, 64, 64\); expected \(m, height, width, 3\)"
    ):
        read_h5_split(bad, "train")
    with pytest.raises(MissingDataError, match="test_happy.h5: file not found"):
        read_h5_split(tmp_path / "test_happy.h5", "test")


@pytest.mark.unit
def test_h5_labels_stored_as_a_row_vector_are_read(tmp_path):
    with h5py.File(tmp_path / "test_signs.h5", "w") as fh:
        fh["test_set_x"] = np.ones((3, 64, 64, 3), np.uint8)
        fh["test_set_y"] = np.array([[0, 5, 2]])  # (1, m), as some copies of SIGNS store it
        fh["list_classes"] = np.arange(6)
    assert read_h5_split(tmp_path / "test_signs.h5", "test").labels.tolist() == [0, 5, 2]


@pytest.mark.unit
def test_validation_names_the_file_and_the_label_that_is_wrong(sample_data, tmp_path):
    folder = tmp_path / "happy"
    shutil.copytree(sample_data("happy-house"), folder)
    with h5py.File(folder / "train_happy.h5", "r+") as fh:
        y = fh["train_set_y"][()]
        y[:3] = 7  # a label outside {0, 1}
        fh["train_set_y"][...] = y
    project, settings = settings_for("happy-house", folder)
    with pytest.raises(DataValidationError) as info:
        project.validate(settings)
    message = str(info.value)
    assert "labels must be in [0, 1]" in message and "train: label 7" in message
    # A wrong image size in params is named with the file and key it was read from.
    project, settings = settings_for("happy-house", sample_data("happy-house"), data={"height": 32})
    with pytest.raises(DataValidationError, match=r"images are 32 px high -> train \(train_happy.h5:train_set_x\)"):
        project.validate(settings)


VISION_PROJECTS = [
    "mnist-dnn",
    "mnist-mc-dropout",
    "happy-house",
    "resnet50",
    "mobilenetv2-transfer",
    "vgg16-transfer",
    "face-mask-transfer",
]


@pytest.mark.unit
@pytest.mark.parametrize("project_name", VISION_PROJECTS)
def test_every_vision_project_can_score_a_registered_model_for_the_promotion_gate(project_name):
    # `dlfolio promote` scores champion and challenger with Project.score; the base class refuses. The flow that
    # registers and promotes one of them end to end: test_transfer_projects.py (mobilenetv2-transfer).
    project = get_project(project_name)
    assert type(project).score is not Project.score
    assert project.primary_metric in {"accuracy", "precision", "recall", "f1", "roc_auc"} and project.higher_is_better


@pytest.mark.unit
def test_mnist_validation_passes_on_the_sample_and_fails_on_a_missing_label(sample_data):
    project, settings = settings_for("mnist-dnn", sample_data("mnist-dnn"))
    report = project.validate(settings)
    assert report.success and report.rows == 70000
    project, settings = settings_for("mnist-dnn", sample_data("mnist-dnn"), data={"labels": list(range(9))})
    with pytest.raises(DataValidationError, match=r"labels must be in \[0, 1, 2, 3, 4, 5, 6, 7, 8\].*train: label 9"):
        project.validate(settings)


@pytest.mark.unit
def test_mnist_missing_files_are_named(tmp_path):
    project, settings = settings_for("mnist-dnn", tmp_path)
    with pytest.raises(MissingDataError, match="missing IDX file.*train-images-idx3-ubyte"):
        project.validate(settings)


@pytest.mark.unit
def test_a_tiny_fashion_sample_is_the_first_items_of_the_real_files_in_the_same_idx_format(tmp_path):
    from components.data.formats.idx import FASHION_MNIST, FILES, copy_fashion_mnist, load_mnist, read_idx

    assert copy_fashion_mnist(tmp_path / "a", limit=50) == {"train": 50, "test": 10}
    copy_fashion_mnist(tmp_path / "b", limit=50)
    X, y, X_test, y_test = load_mnist(tmp_path / "a")  # read back through MNIST's own loader
    assert X.shape == (50, 28, 28) and X_test.shape == (10, 28, 28) and len(y) == 50 and len(y_test) == 10
    np.testing.assert_array_equal(X, read_idx(FASHION_MNIST / FILES["train_images"])[:50])
    np.testing.assert_array_equal(y_test, read_idx(FASHION_MNIST / FILES["test_labels"])[:10])
    for name in FILES.values():  # deterministic bytes (gzip without a timestamp), as every sample is
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.e2e  # trains the project through its stages to a quality threshold
def test_mnist_dnn_is_the_seed_network_and_learns(sample_data, tmp_path):
    project, settings = settings_for(
        "mnist-dnn", sample_data("mnist-dnn"), data={"train_limit": 10000, "test_limit": 2000}, train={"epochs": 3}
    )
    data = project.prepare(settings)
    assert data.X_train.shape[1:] == (28, 28, 1) and data.sizes() == {
        "train": 8100,  # 10% of the training rows calibrate the conformal sets
        "calibration": 900,
        "val": 1000,
        "test": 2000,
    }
    trained = project.train(data, settings, on_epoch=lambda stats: None, checkpoint_dir=tmp_path)
    # 784-128-128-128-10: 100,480 + 16,512 + 16,512 + 1,290 weights and biases.
    assert trained.info["parameters"] == 134_794
    accuracy = project.evaluate(trained, data, settings).metrics["accuracy"]
    assert accuracy > 0.75, accuracy  # 10 classes: chance is 0.1; the full default run reaches 0.88+


@pytest.mark.integration
def test_happy_house_flow_learns_registers_and_serves(prefect_server, project_root, sample_data):
    import mlflow
    from mlflow.tracking import MlflowClient

    from flows.pipeline import project_pipeline

    root = project_root("happy-house", {"train": {"epochs": 8}})
    result = project_pipeline(project="happy-house", root=str(root))
    assert result["accuracy"] > 0.75, result  # two balanced classes: chance is 0.5
    version = MlflowClient().get_model_version_by_alias("happy-house", "challenger")
    assert str(version.version) == str(result["model_version"])
    model = mlflow.pyfunc.load_model("models:/happy-house@challenger")
    images = load_h5_parts(sample_data("happy-house"), "happy")["test"].images[:4]
    frame = model.predict(images)
    assert list(frame.columns[:4]) == ["label", "probability", "p_0", "p_1"] and len(frame) == 4
    # conformal is on by default: the LAC set and the batch's drift warning come with every prediction
    assert list(frame.columns[4:]) == ["prediction_set", "set_size", "drift_pvalue", "drift_warning"]
