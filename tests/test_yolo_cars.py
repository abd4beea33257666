"""yolo-cars: images + boxes.csv (Kaggle/Udacity column names too), validation that names the CSV line and image
at fault, IoU / NMS / AP written out and checked against torchvision and a hand-made case, YOLOv2 box encoding
that decodes back to its box, and one shrunk end-to-end run on real Prefect, MLflow (SQLite) and GX whose
detector is far better than a centre-box baseline and serves detection rows."""

from __future__ import annotations

import hashlib

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image

from components.data.formats import box_annotations as boxes_io
from components.data.samples.car_scenes import CLASSES
from components.metrics.detection import average_precision, batched_nms, box_iou, detection_metrics, kmeans_anchors, nms
from components.models.yolo import TinyYOLO, decode, encode_targets, yolo_loss
from components.projects import get_project, settings_schemas
from components.settings import load_project_settings
from components.training.detection import flip_horizontally
from components.validation.expectations import DataValidationError

PROJECT = "yolo-cars"
SMALL = {  # a smaller input and net: ~30 s of training on one free core
    "data": {"image_size": 64},
    "model": {"widths": [8, 16, 32, 64]},
    "train": {"epochs": 8, "batch_size": 32, "lr": 0.005, "patience": 8},
    "examples": 4,
}


def digest(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --- sample, loader and validation -------------------------------------------------------------------------


@pytest.mark.unit
def test_sample_is_an_image_folder_and_a_pixel_box_csv_and_deterministic(sample_data, tmp_path):
    root = sample_data(PROJECT)
    header = (root / "boxes.csv").read_text().splitlines()[0]
    assert header == "image,x_min,y_min,x_max,y_max,class"
    boxes = pd.read_csv(root / "boxes.csv")
    images = sorted(p.name for p in (root / "images").iterdir())
    assert len(images) >= 400 and set(boxes["image"]) < set(images)  # some images have no objects at all
    assert set(boxes["class"]) == set(CLASSES)
    assert boxes.groupby("image").size().max() <= 4
    with Image.open(root / "images" / images[0]) as im:
        assert im.format == "JPEG" and im.size == (96, 96)
    assert (boxes["x_min"] >= 0).all() and (boxes["x_max"] <= 96).all() and (boxes["x_min"] < boxes["x_max"]).all()
    assert (boxes["y_min"] >= 0).all() and (boxes["y_max"] <= 96).all() and (boxes["y_min"] < boxes["y_max"]).all()
    get_project(PROJECT).make_sample(tmp_path)
    assert digest(tmp_path / "boxes.csv") == digest(root / "boxes.csv")
    assert all(digest(tmp_path / "images" / n) == digest(root / "images" / n) for n in images[::53])


@pytest.mark.unit
def test_loader_reads_kaggle_and_udacity_column_names(tmp_path):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "images" / "a.jpg")
    (tmp_path / "boxes.csv").write_text("xmin,ymin,xmax,ymax,Frame,Label\n1,2,30,20,a.jpg,truck\n")
    table = boxes_io.read_boxes(tmp_path)
    assert table[list(boxes_io.COLUMNS)].values.tolist() == [["a.jpg", 1, 2, 30, 20, "truck"]]
    (tmp_path / "boxes.csv").write_text("image,xmin,ymin,xmax,ymax\na.jpg,1.5,2,30,20\n")  # Kaggle: no class
    assert boxes_io.read_boxes(tmp_path)["class"].tolist() == ["car"]
    # resized to 30 x 30 the box scales with the image, per axis
    images, targets = boxes_io.load_detection_set(tmp_path, ["a.jpg"], boxes_io.read_boxes(tmp_path), ("car",), 30)
    assert images.shape == (1, 30, 30, 3)
    np.testing.assert_allclose(targets[0], [[0.75, 1.5, 15, 15, 0]])


@pytest.mark.unit
def test_a_broken_box_table_fails_validation_naming_the_csv_line_and_image(project_root):
    root = project_root(PROJECT, copy_data=True)
    data = root / "data" / PROJECT
    (data / "images" / "0001.jpg").write_bytes(b"not a jpeg")
    with (data / "boxes.csv").open("a") as fh:
        fh.write(
            "0002.jpg,80,10,100,30,car\n"  # right edge beyond the 96-px image
            "0003.jpg,50,10,40,30,car\n"  # x_min > x_max
            "0004.jpg,10,10,40,30,bus\n"  # unknown class
            "9999.jpg,10,10,40,30,car\n"  # no such image
            "0005.jpg,ten,10,40,30,car\n"  # not a number
            "0001.jpg,10,10,40,30,car\n"
        )  # an image that does not decode
    n = len((data / "boxes.csv").read_text().splitlines())  # the last line's number
    settings = load_project_settings(root / "params.yaml", PROJECT, settings_schemas())
    with pytest.raises(DataValidationError) as err:
        get_project(PROJECT).validate(settings)
    message = str(err.value)
    assert f"boxes.csv line {n - 5} (0002.jpg)" in message and "x_max <= width" in message
    assert f"boxes.csv line {n - 4} (0003.jpg)" in message and "x_min < x_max" in message
    assert f"boxes.csv line {n - 3} (0004.jpg)" in message and "class must be one of ['car', 'truck']" in message
    assert f"boxes.csv line {n - 2} (9999.jpg)" in message and "the image must exist in images/" in message
    assert f"boxes.csv line {n - 1} (0005.jpg)" in message and "coordinates must be numbers" in message
    assert f"boxes.csv line {n} (0001.jpg)" in message and "images/0001.jpg (cannot decode" in message


# --- geometry and metric units ------------------------------------------------------------------------------


def random_boxes(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 80
    return torch.cat([xy, xy + 2 + torch.rand(n, 2, generator=g) * 30], 1)


@pytest.mark.unit
def test_iou_and_nms_agree_with_torchvision():
    a, b = random_boxes(50, 0), random_boxes(30, 1)
    torch.testing.assert_close(box_iou(a, b), torchvision.ops.box_iou(a, b))
    scores = torch.rand(50, generator=torch.Generator().manual_seed(2))
    classes = torch.randint(0, 3, (50,), generator=torch.Generator().manual_seed(3))
    for threshold in (0.1, 0.3, 0.5, 0.7):
        assert torch.equal(nms(a, scores, threshold), torchvision.ops.nms(a, scores, threshold))
        assert torch.equal(
            batched_nms(a, scores, classes, threshold), torchvision.ops.batched_nms(a, scores, classes, threshold)
        )
    assert len(nms(a, scores, 0.1)) < len(nms(a, scores, 0.7))  # it really suppresses


@pytest.mark.unit
def test_average_precision_on_a_hand_made_case():
    # two true cars in image 0, one in image 1; detections by score: hit, miss, duplicate of the first hit, hit
    truth = [np.array([[0, 0, 10, 10, 0], [20, 20, 30, 30, 0]], np.float32), np.array([[0, 0, 10, 10, 0]], np.float32)]
    detections = pd.DataFrame(
        {
            "image": [0, 1, 0, 1],
            "x_min": [0, 50, 1, 0],
            "y_min": [0, 50, 0, 1],
            "x_max": [10, 60, 10, 10],
            "y_max": [10, 60, 10, 10],
            "class": "car",
            "score": [0.9, 0.8, 0.7, 0.6],
        }
    )
    metrics, curve = detection_metrics(detections, truth, ("car", "truck"), operating_threshold=0.75)
    # TP FP FP TP: recall 1/3 1/3 1/3 2/3, precision 1 1/2 1/3 1/2 -> all-point AP = 1/3 * 1 + 1/3 * 1/2
    np.testing.assert_allclose(curve["recall"], [1 / 3, 1 / 3, 1 / 3, 2 / 3])
    np.testing.assert_allclose(curve["precision"], [1, 1 / 2, 1 / 3, 1 / 2])
    assert metrics["ap50_car"] == pytest.approx(1 / 3 + 1 / 6)
    assert metrics["map50"] == metrics["ap50_car"] and "ap50_truck" not in metrics  # no true truck: not averaged
    assert metrics["precision"] == 0.5 and metrics["recall"] == pytest.approx(1 / 3)  # the two scoring >= 0.75
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == 1.0


@pytest.mark.unit
def test_kmeans_anchors_find_the_box_shapes():
    rng = np.random.default_rng(0)
    wh = np.concatenate([rng.normal([0.1, 0.05], 0.005, (100, 2)), rng.normal([0.4, 0.3], 0.01, (100, 2))])
    np.testing.assert_allclose(kmeans_anchors(wh, 2), [[0.1, 0.05], [0.4, 0.3]], atol=0.01)


# --- model units -------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_grid_output_shape_and_yolov2_targets_decode_back_to_the_true_boxes():
    anchors = torch.tensor([[0.2, 0.1], [0.4, 0.3]])
    net = TinyYOLO(num_classes=2, anchors=anchors, widths=(4, 8, 8, 8)).eval()
    assert net.stride == 8 and net(torch.rand(3, 3, 64, 64)).shape == (3, 8, 8, 2, 7)
    boxes = torch.tensor([[[0.10, 0.20, 0.32, 0.31, 1], [0.5, 0.5, 0.9, 0.8, 0], [-1, -1, -1, -1, -1]]])
    t = encode_targets(boxes, anchors, grid=8)
    assert t["obj"].sum() == 2 and t["obj"][0, 2, 1, 0] and t["obj"][0, 5, 5, 1]  # centre cell, best-fitting anchor
    # Raw predictions that say exactly the targets: logit of the offsets, log-scale of the anchors, sure objects
    raw = torch.full((1, 8, 8, 2, 7), -12.0)
    raw[..., :2] = torch.logit(t["txy"].clamp(1e-6, 1 - 1e-6))
    raw[..., 2:4] = t["twh"]
    raw[..., 4] = torch.where(t["obj"], 12.0, -12.0)
    raw[..., 5:] = torch.nn.functional.one_hot(t["cls"], 2) * 24.0 - 12
    (found,) = decode(net, raw, score_threshold=0.5, iou_threshold=0.45, max_detections=10)
    found = found[torch.argsort(found[:, 4])]  # by class
    torch.testing.assert_close(found[:, :4], boxes[0, [1, 0], :4], atol=1e-5, rtol=0)
    assert found[:, 4].tolist() == [0, 1] and (found[:, 5] > 0.99).all()
    assert yolo_loss(raw, t) < 0.01 < yolo_loss(torch.zeros_like(raw), t)
    raw.requires_grad_(True)
    yolo_loss(raw, t).backward()  # gradients reach box and class outputs only where an object is
    assert raw.grad[..., [0, 1, 2, 3, 5, 6]][~t["obj"]].abs().max() == 0


@pytest.mark.unit
def test_a_flip_mirrors_the_image_and_its_boxes_together():
    images = torch.zeros(2, 3, 8, 8)
    images[:, :, 2:4, 1:3] = 1  # an object in columns 1..2
    boxes = torch.tensor([[[1 / 8, 2 / 8, 3 / 8, 4 / 8, 0], [-1, -1, -1, -1, -1]]]).repeat(2, 1, 1)
    flipped, moved = flip_horizontally(images, boxes, torch.tensor([True, False]))
    assert torch.equal(flipped[0, 0, 2:4, 5:7], torch.ones(2, 2)) and flipped[0].sum() == images[0].sum()
    torch.testing.assert_close(moved[0, 0], torch.tensor([5 / 8, 2 / 8, 7 / 8, 4 / 8, 0]))
    assert (
        torch.equal(moved[0, 1], boxes[0, 1]) and torch.equal(moved[1], boxes[1]) and torch.equal(flipped[1], images[1])
    )


@pytest.mark.unit
def test_the_predictor_returns_boxes_in_the_pixels_of_each_input_image():
    from components.projects.yolo_cars import DetectionPredictor
    from components.training.detection import DecodeConfig

    net = TinyYOLO(num_classes=2, anchors=[[0.3, 0.2]], widths=(4, 8, 8)).eval()
    with torch.no_grad():  # a head that ignores the image: every cell says "a car of the anchor's size, here"
        net.head.weight.zero_()
        net.head.bias.copy_(torch.tensor([0.0, 0, 0, 0, 5, 3, -3]))
    served = DetectionPredictor(net, ("car", "truck"), image_size=32, decode=DecodeConfig(0.5, 0.45, 100))
    square = served.predict_frame(np.zeros((32, 32, 3), np.uint8))
    wide = served.predict_frame(np.zeros((2, 32, 64, 3), np.uint8))  # twice as wide: x doubles, y stays
    assert len(square) > 1 and set(square["class"]) == {"car"} and len(wide) == 2 * len(square)
    first = wide[wide["image"] == 0].reset_index(drop=True)
    np.testing.assert_allclose(first[["x_min", "x_max"]], 2 * square[["x_min", "x_max"]], rtol=1e-5)
    np.testing.assert_allclose(first[["y_min", "y_max", "score"]], square[["y_min", "y_max", "score"]], rtol=1e-5)
    np.testing.assert_allclose(square["x_max"] - square["x_min"], 0.3 * 32, rtol=1e-5)


# --- end to end -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline_run(prefect_server, tmp_path_factory, sample_data):
    from flows.pipeline import project_pipeline
    from tests.conftest import REPO, deep_merge

    root = tmp_path_factory.mktemp("yolo-root")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = deep_merge(params["projects"][PROJECT], SMALL) | {"data_dir": str(sample_data(PROJECT))}
    (root / "params.yaml").write_text(yaml.safe_dump({"defaults": params["defaults"], "projects": {PROJECT: section}}))
    return root, project_pipeline(project=PROJECT, root=str(root))


@pytest.mark.e2e
def test_the_detector_is_far_better_than_a_centre_box_and_logs_curves_and_detections(pipeline_run):
    root, result = pipeline_run
    assert result["baseline_map50"] < 0.1  # one mean-sized box at the centre rarely overlaps a car by IoU 0.5
    assert result["map50"] > result["baseline_map50"] + 0.3, result
    assert result["precision"] > 0.4 and result["recall"] > 0.3, result
    client = MlflowClient()
    run = client.get_run(result["run_id"])
    assert 1 <= len(client.get_metric_history(run.info.run_id, "val_map50")) <= SMALL["train"]["epochs"]
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/loss_curve.png", "plots/test_detections.png", "plots/precision_recall.png"} <= plots
    assert (root / "outputs" / PROJECT / "plots" / "per_class_ap.csv").is_file()


@pytest.mark.integration
def test_registered_model_serves_detection_rows_and_its_score_equals_the_pipeline_metric(pipeline_run):
    from flows.promotion import load_settings

    root, result = pipeline_run
    assert MlflowClient().get_model_version_by_alias(PROJECT, "challenger").version == result["model_version"]
    model = mlflow.pyfunc.load_model(f"models:/{PROJECT}@challenger")
    spec, settings = load_settings(PROJECT, "params.yaml", root)
    data = spec.prepare(settings)  # the signature fixes the input to the training size, here 64 x 64
    out = model.predict(data.X_test[:8])
    assert list(out.columns) == ["image", "x_min", "y_min", "x_max", "y_max", "class", "score"]
    assert set(out["image"]) <= set(range(8)) and set(out["class"]) <= set(CLASSES)
    assert ((out["x_min"] < out["x_max"]) & (out["y_min"] < out["y_max"])).all() and out["score"].between(0, 1).all()
    corners = ["x_min", "y_min", "x_max", "y_max"]
    sure = out[out["score"] >= 0.5]
    best = [
        box_iou(
            torch.tensor(row[corners].to_numpy(np.float64)[None]),
            torch.tensor(data.boxes_test[int(row["image"])][:, :4], dtype=torch.float64),
        )
        .max()
        .item()
        if len(data.boxes_test[int(row["image"])])
        else 0.0
        for _, row in sure.iterrows()
    ]
    assert len(sure) > 0 and np.mean(np.array(best) > 0.5) > 0.5  # most confident detections sit on a real vehicle
    assert spec.score(model, data, settings)["map50"] == pytest.approx(result["map50"])
