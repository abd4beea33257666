"""unet-segmentation: images + class-index masks paired by name, validation that names the bad file, a U-Net
whose output keeps the input's size and really uses its skip connections, and one shrunk end-to-end run on
real Prefect, MLflow (SQLite) and GX that beats the majority-class baseline and serves masks."""

from __future__ import annotations

import hashlib

import mlflow
import numpy as np
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image

from components.data.formats import segmentation_masks as masks_io
from components.data.samples.segmentation import CLASSES
from components.metrics.segmentation import SegmentationDataset, iou_per_class, segmentation_metrics
from components.models.unet import UNet
from components.projects import get_project, settings_schemas
from components.settings import load_project_settings
from components.validation.expectations import DataValidationError

PROJECT = "unet-segmentation"
SMALL = {  # ~40 s of training on one free core
    "model": {"widths": [8, 16, 32]},
    "train": {"epochs": 6, "batch_size": 8, "lr": 0.005, "patience": 6},
    "examples": 3,
}


def digest(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --- sample and validation --------------------------------------------------------------------------------


@pytest.mark.unit
def test_sample_is_images_and_class_index_masks_paired_by_name_and_deterministic(sample_data, tmp_path):
    root = sample_data(PROJECT)
    images, masks = sorted((root / "images").glob("*.png")), sorted((root / "masks").glob("*.png"))
    assert len(images) == len(masks) >= 300
    assert [p.name for p in images] == [p.name for p in masks]
    assert masks_io.read_classes(root) == CLASSES
    with Image.open(images[0]) as im, Image.open(masks[0]) as mk:
        assert im.mode == "RGB" and mk.mode == "L" and im.size == mk.size == (64, 64)
    values = np.unique(np.concatenate([np.asarray(Image.open(p)).ravel() for p in masks[:50]]))
    assert set(values) == set(range(len(CLASSES)))  # every class occurs, no index outside them
    get_project(PROJECT).make_sample(tmp_path)
    assert all(digest(f) == digest(tmp_path / f.relative_to(root)) for f in images[::37] + masks[::37])
    assert (tmp_path / "classes.txt").read_bytes() == (root / "classes.txt").read_bytes()


@pytest.mark.unit
def test_a_broken_folder_fails_validation_naming_each_bad_file(project_root):
    root = project_root(PROJECT, copy_data=True)
    data = root / "data" / PROJECT
    (data / "masks" / "0003.png").unlink()  # image without mask
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(data / "masks" / "0004.png")  # wrong size
    Image.fromarray(np.full((64, 64), 9, np.uint8)).save(data / "masks" / "0005.png")  # no class 9
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(data / "masks" / "0006.png")  # RGB, not indices
    (data / "images" / "0007.png").write_bytes(b"not a png")
    settings = load_project_settings(root / "params.yaml", PROJECT, settings_schemas())
    with pytest.raises(DataValidationError) as err:
        get_project(PROJECT).validate(settings)
    message = str(err.value)
    assert "images/0003.png has no mask masks/0003.png" in message
    assert "images/0004.png / masks/0004.png" in message and "width and height" in message
    assert "masks/0005.png (class index 9)" in message and "0..4 (5 classes)" in message
    assert "masks/0006.png (mode RGB)" in message
    assert "images/0007.png / masks/0007.png (cannot decode" in message


@pytest.mark.unit
def test_class_shares_must_be_plausible_and_classes_txt_must_agree_with_params(project_root):
    root = project_root(PROJECT, overrides={"data": {"min_class_share": 0.05}})
    settings = load_project_settings(root / "params.yaml", PROJECT, settings_schemas())
    with pytest.raises(DataValidationError) as err:  # horses and triangles cover ~3% of the pixels each
        get_project(PROJECT).validate(settings)
    assert "share of all pixels" in str(err.value) and "horse" in str(err.value) and "disc" not in str(err.value)
    root = project_root(PROJECT, overrides={"data": {"classes": ["background", "car", "road", "sky", "person"]}})
    settings = load_project_settings(root / "params.yaml", PROJECT, settings_schemas())
    with pytest.raises(ValueError, match="classes.txt names .* but params.yaml data.classes"):
        get_project(PROJECT).validate(settings)


@pytest.mark.unit
def test_served_masks_round_trip_through_base64_png():
    mask = np.random.default_rng(0).integers(0, 23, size=(12, 20)).astype(np.uint8)
    np.testing.assert_array_equal(masks_io.decode_mask(masks_io.encode_mask(mask)), mask)


# --- model and metric units -------------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("widths", [(4, 8), (4, 8, 16), (4, 8, 16, 32)])
@pytest.mark.parametrize("size", [(32, 32), (37, 50)])
def test_unet_logits_have_the_input_size_for_every_depth(widths, size):
    net = UNet(num_classes=5, widths=widths).eval()
    assert net(torch.rand(2, 3, *size)).shape == (2, 5, *size)
    assert len(net.up) == len(net.decode) == len(widths) - 1
    assert all(isinstance(up, torch.nn.ConvTranspose2d) for up in net.up)


@pytest.mark.unit
def test_each_decoder_level_convolves_its_skip_concatenated_with_the_upsampled_features():
    net = UNet(num_classes=3, widths=(4, 8, 16)).eval()
    assert [block[0].in_channels for block in net.decode] == [2 * 8, 2 * 4]  # [skip, upsampled] at 8 and 4 ch
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        reference = net(x)
        for level in range(len(net.down)):
            # Zero only the skip half of what the decoder block at this level convolves, [skip, upsampled]:
            # the encoder feature arriving sideways must matter on its own.
            skips_only = net.decode[len(net.down) - 1 - level][0].register_forward_pre_hook(
                lambda m, args: (
                    torch.cat(
                        [torch.zeros_like(args[0][:, : args[0].shape[1] // 2]), args[0][:, args[0].shape[1] // 2 :]], 1
                    ),
                )
            )
            assert not torch.allclose(net(x), reference), f"the skip of level {level} is not used"
            skips_only.remove()
        assert torch.allclose(net(x), reference)


@pytest.mark.unit
def test_flips_move_image_and_mask_together():
    image = np.zeros((1, 8, 8, 3), np.uint8)
    image[0, :, :2] = 255  # a bright stripe on the left ...
    mask = np.zeros((1, 8, 8), np.uint8)
    mask[0, :, :2] = 1  # ... labelled class 1
    data = SegmentationDataset(image, mask, flip=True)
    torch.manual_seed(0)
    flipped = 0
    for _ in range(20):
        x, y = data[0]
        assert y.dtype == torch.long and torch.equal(x[0] > 0, y == 1)  # the label stays on the stripe
        flipped += int(y[0, -1] == 1)
    assert 0 < flipped < 20


@pytest.mark.unit
def test_iou_is_intersection_over_union_per_class_and_mean_skips_absent_classes():
    truth = np.array([[0, 0, 1, 1]])
    predicted = np.array([[0, 1, 1, 1]])
    cm = np.array([[1, 1, 0], [0, 2, 0], [0, 0, 0]])
    np.testing.assert_allclose(iou_per_class(cm), [1 / 2, 2 / 3, np.nan])
    m = segmentation_metrics(truth, predicted, ("a", "b", "c"))
    assert m["mean_iou"] == pytest.approx((1 / 2 + 2 / 3) / 2) and m["pixel_accuracy"] == 0.75
    assert "iou_c" not in m


# --- end to end -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline_run(prefect_server, tmp_path_factory, sample_data):
    from flows.pipeline import project_pipeline
    from tests.conftest import REPO, deep_merge

    root = tmp_path_factory.mktemp("unet-root")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = deep_merge(params["projects"][PROJECT], SMALL) | {"data_dir": str(sample_data(PROJECT))}
    (root / "params.yaml").write_text(yaml.safe_dump({"defaults": params["defaults"], "projects": {PROJECT: section}}))
    return root, project_pipeline(project=PROJECT, root=str(root))


@pytest.mark.e2e
def test_unet_beats_the_majority_class_baseline_and_logs_curves_and_masks(pipeline_run):
    root, result = pipeline_run
    # predicting background everywhere: mean IoU ~0.83 / 5 classes ~ 0.17
    assert result["baseline_mean_iou"] < 0.2
    assert result["mean_iou"] > result["baseline_mean_iou"] + 0.2, result
    assert result["pixel_accuracy"] > result["baseline_pixel_accuracy"]
    client = MlflowClient()
    run = client.get_run(result["run_id"])
    assert len(client.get_metric_history(run.info.run_id, "val_pixel_accuracy")) == SMALL["train"]["epochs"]
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/loss_curve.png", "plots/test_predictions.png", "plots/per_class_iou.png"} <= plots
    assert (root / "outputs" / PROJECT / "plots" / "per_class_iou.csv").is_file()


@pytest.mark.integration
def test_registered_model_serves_masks_and_its_score_equals_the_pipeline_metric(pipeline_run, sample_data):
    from flows.promotion import load_settings

    root, result = pipeline_run
    assert MlflowClient().get_model_version_by_alias(PROJECT, "challenger").version == result["model_version"]
    model = mlflow.pyfunc.load_model(f"models:/{PROJECT}@challenger")
    names = ["0001", "0002", "0003"]
    images = np.stack([np.asarray(Image.open(sample_data(PROJECT) / "images" / f"{n}.png")) for n in names])
    out = model.predict(images)
    assert list(out.columns[:3]) == ["mask", "height", "width"] and len(out) == 3
    masks = [masks_io.decode_mask(m) for m in out["mask"]]
    assert all(m.shape == (64, 64) and m.max() < len(CLASSES) for m in masks)
    np.testing.assert_allclose(out[[f"share_{c}" for c in CLASSES]].sum(axis=1), 1.0)
    truth = np.stack([np.asarray(Image.open(sample_data(PROJECT) / "masks" / f"{n}.png")) for n in names])
    assert (np.stack(masks) == truth).mean() > 0.85
    spec, settings = load_settings(PROJECT, "params.yaml", root)
    assert spec.score(model, spec.prepare(settings), settings)["mean_iou"] == pytest.approx(result["mean_iou"])
