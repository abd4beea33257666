"""facial-keypoints: Kaggle's training.csv layout (many rows with only four keypoints), validation that names the
bad line, flips that mirror the keypoints with the image, a loss that ignores missing keypoints, split-conformal
intervals, and one shrunk end-to-end run on real Prefect, MLflow (SQLite) and GX that beats the mean-position
baseline by far and serves coordinates with intervals from Kaggle's Image strings."""

from __future__ import annotations

import zipfile

import mlflow
import numpy as np
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from components.data.formats import facial_keypoints as fk
from components.data.samples import facial_keypoints as facial_keypoints_sample
from components.models.keypoint_cnn import KeypointCNN, flip_horizontally, masked_mse
from components.projects import get_project, settings_schemas
from components.projects.facial_keypoints import group_columns
from components.projects.settings.facial_keypoints import KeypointTrainSettings
from components.settings import SettingsError, load_project_settings
from components.training.optim import make_optimizer, make_scheduler
from components.validation.expectations import DataValidationError

PROJECT = "facial-keypoints"
SMALL = {  # the default net, 8 epochs instead of 20: ~35 s of training on one free core
    "train": {"epochs": 8, "patience": 8},
    "examples": 6,
}


# --- sample and validation --------------------------------------------------------------------------------


@pytest.mark.unit
def test_sample_is_kaggles_training_csv_with_most_rows_holding_only_the_four_common_keypoints(sample_data, tmp_path):
    path = sample_data(PROJECT) / "training.zip"
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["training.csv"]
        header = archive.read("training.csv").split(b"\n", 1)[0].decode()
    assert header.split(",") == list(fk.COLUMNS)
    assert fk.COLUMNS[:4] == ("left_eye_center_x", "left_eye_center_y", "right_eye_center_x", "right_eye_center_y")
    assert len(fk.COLUMNS) == 31 and fk.COLUMNS[-2] == "mouth_center_bottom_lip_y"
    images, coords = fk.load_keypoints(path)
    assert images.shape == (1000, 96, 96) and images.dtype == np.uint8 and images.std() > 20
    present = ~np.isnan(coords)
    common = [i for i, c in enumerate(fk.COORDINATES) if c.rsplit("_", 1)[0] in fk.COMMON]
    assert present[:, common].all()
    only_common = ~present.any(axis=1) | (present.sum(axis=1) == 8)
    assert 0.6 < only_common.mean() < 0.8
    assert np.nanmin(coords) > 0 and np.nanmax(coords) < 96
    # The person's left eye is on the image's right, as in Kaggle's data.
    assert (coords[:, 0] > coords[:, 2]).all()
    # Same seed, same faces: the first faces of a shorter run are the sample's first faces, byte for byte.
    facial_keypoints_sample.generate(tmp_path, rows=5)
    again, _ = fk.load_keypoints(tmp_path / "training.zip")
    np.testing.assert_array_equal(again, images[:5])
    facial_keypoints_sample.generate(tmp_path / "b", rows=5)
    assert (tmp_path / "b" / "training.zip").read_bytes() == (tmp_path / "training.zip").read_bytes()


@pytest.mark.unit
def test_a_broken_file_fails_validation_naming_each_bad_line(sample_data, project_root):
    root = project_root(PROJECT)
    frame = fk.read_table(sample_data(PROJECT) / "training.zip")
    frame.loc[1, "Image"] = frame.loc[1, "Image"].rsplit(" ", 1)[0]  # 9215 values: line 3
    frame.loc[3, "nose_tip_x"] = "120.5"  # outside the image: line 5
    pixels = frame.loc[5, "Image"].split()
    pixels[10] = "300"  # line 7
    frame.loc[5, "Image"] = " ".join(pixels)
    frame.loc[7, "Image"] = frame.loc[7, "Image"].replace(" ", " x ", 1)  # not an integer: line 9
    data = root / "broken"
    data.mkdir()
    frame.to_csv(data / "training.csv", index=False)
    settings = load_project_settings(root / "params.yaml", PROJECT, settings_schemas())
    settings = settings.model_copy(update={"data_dir": data})
    with pytest.raises(DataValidationError) as err:
        get_project(PROJECT).validate(settings)
    message = str(err.value)
    assert "image_values) failed: Image must hold exactly 9216 integers" in message
    assert "-> line 3, line 9" in message
    assert "nose_tip_x) failed: in [0, 96] px (or empty) -> line 5" in message
    assert "image_max) failed: grey levels <= 255 -> line 7" in message
    assert "image_min" not in message and "left_eye_center_x" not in message

    frame.drop(columns=["mouth_left_corner_y"]).to_csv(data / "training.csv", index=False)
    with pytest.raises(DataValidationError, match=r"31 columns .* missing \['mouth_left_corner_y'\]"):
        get_project(PROJECT).validate(settings)


@pytest.mark.unit
def test_too_few_complete_faces_fail_and_a_missing_file_says_where_to_get_it(project_root, tmp_path):
    root = project_root(PROJECT, overrides={"data": {"min_complete_rows": 5000}})
    settings = load_project_settings(root / "params.yaml", PROJECT, settings_schemas())
    with pytest.raises(DataValidationError, match="at least 5000 faces with all 15 keypoints"):
        get_project(PROJECT).validate(settings)
    with pytest.raises(FileNotFoundError, match="Kaggle's training.csv"):
        get_project(PROJECT).validate(settings.model_copy(update={"data_dir": tmp_path / "nothing"}))


@pytest.mark.unit
def test_specialist_groups_must_name_known_keypoints_with_their_mirror_partners(project_root):
    with pytest.raises(SettingsError, match="unknown keypoints \\['third_eye'\\]"):
        root = project_root(PROJECT, overrides={"specialists": {"eyes": ["left_eye_center", "third_eye"]}})
        load_project_settings(root / "params.yaml", PROJECT, settings_schemas())
    columns, mirror = group_columns(("mouth_left_corner", "mouth_right_corner", "mouth_center_bottom_lip"))
    assert [fk.COORDINATES[c] for c in columns[::2]] == [
        "mouth_left_corner_x",
        "mouth_right_corner_x",
        "mouth_center_bottom_lip_x",
    ]
    assert mirror.tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match="lacks the mirror partners \\['right_eye_center'\\]"):
        group_columns(("left_eye_center", "nose_tip"))


# --- model, loss, augmentation and intervals --------------------------------------------------------------


@pytest.mark.unit
def test_flipping_mirrors_x_and_swaps_left_and_right_columns_and_twice_is_identity():
    mirror = torch.as_tensor(fk.mirrored_keypoint_order())
    image = torch.zeros(1, 1, 96, 96)
    image[0, 0, 30, 60] = 1.0  # a pupil at x=60, y=30: the person's left eye (the image's right side)
    coords = torch.full((1, 30), float("nan"))
    coords[0, :4] = torch.tensor([60.0, 30.0, 36.0, 31.0])  # left and right eye centres
    coords[0, 20:22] = torch.tensor([47.0, 50.0])  # nose tip
    flipped_image, flipped = flip_horizontally(image, coords, mirror)
    # The left eye, seen in a mirror, is a right eye: its point lands in the right-eye columns at 95 - 60.
    assert flipped[0, 2:4].tolist() == [35.0, 30.0] and flipped_image[0, 0, 30, 35] == 1.0
    assert flipped[0, 0:2].tolist() == [59.0, 31.0]
    assert flipped[0, 20:22].tolist() == [48.0, 50.0]  # the nose tip keeps its column
    assert torch.isnan(flipped[0, 4:20]).all()  # missing stays missing
    twice_image, twice = flip_horizontally(flipped_image, flipped, mirror)
    assert torch.equal(twice_image, image) and torch.allclose(twice, coords, equal_nan=True)
    order = fk.mirrored_keypoint_order()
    assert (order[order] == np.arange(15)).all() and fk.KEYPOINTS[
        order[fk.KEYPOINTS.index("mouth_left_corner")]
    ] == "mouth_right_corner"


@pytest.mark.unit
def test_masked_mse_ignores_missing_keypoints_and_sends_them_no_gradient():
    predicted = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    target = torch.tensor([[1.5, float("nan"), 2.0], [float("nan"), float("nan"), 8.0]])
    loss = masked_mse(predicted, target)
    assert loss.item() == pytest.approx((0.5**2 + 1.0**2 + 2.0**2) / 3)
    loss.backward()
    assert predicted.grad[0, 1] == 0 and predicted.grad[1, 0] == 0 and predicted.grad[1, 1] == 0
    assert predicted.grad[1, 2] != 0


@pytest.mark.unit
def test_the_net_maps_96x96_faces_to_30_coordinates_inside_the_image():
    net = KeypointCNN(widths=(4, 8), context=(8, 8)).eval()
    out = net(torch.rand(3, 1, 96, 96))
    assert out.shape == (3, 30) and out.abs().max() < 1  # soft-argmax: a mean of cell centres, always inside
    assert net(torch.rand(2, 1, 96, 96)).shape == (2, 30)
    assert KeypointCNN(outputs=8, widths=(4, 8), context=(8,))(torch.rand(1, 1, 96, 96)).shape == (1, 8)
    # A heatmap that is all one cell puts the keypoint at that cell's centre, in pixels 8 * i + 3.5.
    assert (net.centres * 48 + 48).tolist()[:2] == [3.5, 11.5]


@pytest.mark.unit
def test_nesterov_schedule_lowers_the_learning_rate_and_raises_momentum_linearly():
    net = torch.nn.Linear(2, 2)
    config = KeypointTrainSettings(
        epochs=5, optimizer="nesterov", lr=0.03, lr_end=0.01, momentum=0.9, momentum_end=0.98
    )
    assert config.schedule == "linear"  # the project's default: Nouri's schedule
    optimizer = make_optimizer(net, config, torch.device("cpu"))
    scheduler = make_scheduler(optimizer, config, steps_per_epoch=3)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["nesterov"]
    seen = []
    for _ in range(5):  # what each epoch's steps use: one value an epoch, from its first step to its last
        for _ in range(3):
            group = optimizer.param_groups[0]
            seen.append((group["lr"], group["momentum"]))
            optimizer.step()
            scheduler.step()
    assert seen[0::3] == seen[1::3] == seen[2::3]
    seen = seen[0::3]
    np.testing.assert_allclose([lr for lr, _ in seen], [0.03, 0.025, 0.02, 0.015, 0.01])
    np.testing.assert_allclose([m for _, m in seen], [0.9, 0.92, 0.94, 0.96, 0.98])
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.98)


@pytest.mark.unit
def test_the_shared_stage_calibrates_each_coordinate_on_its_present_rows_at_the_right_order_statistic():
    """Per coordinate through MAPIE (components/conformal/calibration.py): the half-width is the
    ceil((n + 1) * confidence)-th smallest absolute residual of the n rows where the coordinate is present, and
    infinite where n is too small for the level."""
    from components.conformal.calibration import ConformalRegressor

    class Zeros:
        def predict(self, X):
            return np.zeros((len(X), 3))

    truth = np.column_stack([np.arange(1.0, 10.0), [np.nan] * 7 + [1.0, 2.0], np.zeros(9)])
    calibrator = ConformalRegressor(Zeros(), "absolute", (0.88, 0.5)).fit(np.zeros((9, 1)), truth)
    _, intervals = calibrator.predict_intervals(np.zeros((1, 1)))  # (n, 2, levels, outputs)
    assert intervals[0, 1, 0].tolist() == [9.0, np.inf, 0.0]  # ceil(10 * 0.88) = 9th of 1..9; 2 rows: inf
    assert intervals[0, 1, 1].tolist() == [5.0, np.inf, 0.0]  # ceil(10 * 0.5) = 5th
    assert (intervals[0, 0] == -intervals[0, 1]).all()


@pytest.mark.unit
def test_specialists_train_a_net_per_keypoint_group_and_report_as_child_runs(project_root, tmp_path):
    from dataclasses import fields

    from components.projects.facial_keypoints import KeypointSplits

    mouth = ["mouth_left_corner", "mouth_right_corner", "mouth_center_top_lip", "mouth_center_bottom_lip"]
    root = project_root(
        PROJECT,
        overrides={
            "train": {"epochs": 1},
            "examples": 2,
            "specialists": {"mouth": mouth, "eyes": ["left_eye_center", "right_eye_center"]},
        },
    )
    settings = load_project_settings(root / "params.yaml", PROJECT, settings_schemas())
    spec = get_project(PROJECT)
    full = spec.prepare(settings)
    data = KeypointSplits(*(getattr(full, f.name)[:48] for f in fields(KeypointSplits)))  # one quick epoch
    trained = spec.train(data, settings, on_epoch=lambda row: None, checkpoint_dir=tmp_path)
    assert {name: net.heatmaps.out_channels for name, (net, _) in trained.model.specialists.items()} == {
        "mouth": 4,
        "eyes": 2,
    }
    children = {c.name: c for c in spec.evaluate(trained, data, settings).children}
    assert sorted(children) == ["specialist-eyes", "specialist-mouth"]
    assert children["specialist-eyes"].params["keypoints"] == "left_eye_center,right_eye_center"
    assert all(np.isfinite([c.metrics["rmse"], c.metrics["general_net_rmse"]]).all() for c in children.values())


# --- end to end -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline_run(prefect_server, tmp_path_factory, sample_data):
    from flows.pipeline import project_pipeline
    from tests.conftest import REPO, deep_merge

    root = tmp_path_factory.mktemp("keypoints-root")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = deep_merge(params["projects"][PROJECT], SMALL) | {"data_dir": str(sample_data(PROJECT))}
    (root / "params.yaml").write_text(yaml.safe_dump({"defaults": params["defaults"], "projects": {PROJECT: section}}))
    return root, project_pipeline(project=PROJECT, root=str(root))


@pytest.mark.e2e
def test_the_net_beats_the_mean_position_by_far_with_calibrated_intervals(pipeline_run):
    root, result = pipeline_run
    assert result["baseline_rmse"] > 5
    assert result["rmse"] < 0.6 * result["baseline_rmse"], result
    assert result["rmse_nose_tip"] < result["baseline_rmse"]
    client = MlflowClient()
    run = client.get_run(result["run_id"])
    assert 0.8 < run.data.metrics["conformal_absolute_90_coverage"] < 0.98  # the shared conformal stage's
    assert len(client.get_metric_history(run.info.run_id, "val_rmse")) == SMALL["train"]["epochs"]
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/learning_curves.png", "plots/test_keypoints.png", "plots/per_keypoint_rmse.png"} <= plots
    assert (root / "outputs" / PROJECT / "plots" / "per_keypoint.csv").is_file()


@pytest.mark.integration
def test_registered_model_serves_coordinates_with_intervals_and_its_score_equals_the_pipeline_metric(
    pipeline_run, sample_data
):
    from flows.promotion import load_settings

    root, result = pipeline_run
    assert MlflowClient().get_model_version_by_alias(PROJECT, "challenger").version == result["model_version"]
    model = mlflow.pyfunc.load_model(f"models:/{PROJECT}@challenger")
    frame = fk.read_table(sample_data(PROJECT) / "training.zip").iloc[:4]
    out = model.predict(frame[["Image"]])
    assert list(out.columns[:30]) == list(fk.COORDINATES) and len(out) == 4
    assert (out["nose_tip_x_lower"] < out["nose_tip_x"]).all() and (out["nose_tip_x"] < out["nose_tip_x_upper"]).all()
    truth = frame[list(fk.COORDINATES[:4])].astype(float).to_numpy()
    assert np.abs(out[list(fk.COORDINATES[:4])].to_numpy() - truth).mean() < 4  # eye centres within a few pixels
    spec, settings = load_settings(PROJECT, "params.yaml", root)
    scored = spec.score(model, spec.prepare(settings), settings)
    assert scored["rmse"] == pytest.approx(result["rmse"])
    assert spec.higher_is_better is False and spec.primary_metric == "rmse"
