"""style-transfer: content/ + style/ image folders, validation that names the bad file or pairs.csv line, the
Gram matrix and the costs against hand computations, feature nets (EfficientNet-Lite0 with its real ImageNet
weights; VGG-19 with RANDOM weights, for shapes and file loading only: no VGG-19 weights file exists here),
and one shrunk end-to-end run on real Prefect, MLflow (SQLite) and GX in which the style cost falls far below
its start and below the plain content image's, and whose served model stylises images."""

from __future__ import annotations

import hashlib

import mlflow
import numpy as np
import pandas as pd
import pytest
import skimage.data
import torch
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image

from components.data.formats import style_images
from components.models.style_features import DEFAULT_LAYERS, FeatureNet
from components.projects import get_project, settings_schemas
from components.projects.style_transfer import decode_image, encode_png, feature_net, objective, pair_costs
from components.settings import load_project_settings
from components.training.style_transfer import (
    Objective,
    OptimiseConfig,
    content_cost,
    gram_matrix,
    layer_style_cost,
    style_cost,
    stylise,
)
from components.validation.expectations import DataValidationError

PROJECT = "style-transfer"
SMALL = {"data": {"image_size": 64}, "optimise": {"steps": 30, "log_every": 10}, "serve": {"steps": 10}}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Two cores shared by several processes: one intra-op thread is several times faster than two here.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def digest(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --- sample and validation --------------------------------------------------------------------------------


@pytest.mark.unit
def test_sample_is_content_and_style_folders_of_real_photos_and_deterministic(sample_data, tmp_path):
    root = sample_data(PROJECT)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    assert files == [
        "content/astronaut.png",
        "content/chelsea.png",
        "content/coffee.png",
        "style/brick.png",
        "style/immunohistochemistry.png",
    ]
    with Image.open(root / "content" / "chelsea.png") as im:
        assert im.mode == "RGB" and im.size == (128, 128)
        # the centre crop of scikit-image's real cat photo, not a drawing
        expected = style_images.square(skimage.data.chelsea(), 128)
        np.testing.assert_array_equal(np.asarray(im), expected)
    get_project(PROJECT).make_sample(tmp_path)
    assert all(digest(root / f) == digest(tmp_path / f) for f in files)
    _, manifest, pairs = style_images.validate_style_folder(root, style_images.StyleRules())
    assert len(pairs) == 6 and set(pairs["style"]) == {"brick.png", "immunohistochemistry.png"}  # all x all


@pytest.mark.unit
def test_a_broken_folder_fails_validation_naming_each_bad_file_and_pairs_line(project_root):
    root = project_root(PROJECT, copy_data=True)
    data = root / "data" / PROJECT
    (data / "content" / "broken.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((8, 40, 3), np.uint8)).save(data / "style" / "tiny.png")
    (data / "content" / "notes.txt").write_text("stray")
    (data / "pairs.csv").write_text("content,style\nastronaut.png,brick.png\nchelsea.png,monet.jpg\n")
    settings = load_project_settings(root / "params.yaml", PROJECT, settings_schemas())
    with pytest.raises(DataValidationError) as err:
        get_project(PROJECT).validate(settings)
    message = str(err.value)
    assert "content/broken.png (cannot decode" in message
    assert "content/notes.txt (not a jpg or png file (.txt))" in message
    assert "height in [32, 8192] px" in message and "style/tiny.png" in message
    assert "pairs.csv line 3: chelsea.png,monet.jpg" in message and "not in style/" in message
    assert "astronaut.png,brick.png" not in message


@pytest.mark.unit
def test_an_empty_style_folder_fails_validation(project_root):
    root = project_root(PROJECT, copy_data=True)
    for p in (root / "data" / PROJECT / "style").iterdir():
        p.unlink()
    settings = load_project_settings(root / "params.yaml", PROJECT, settings_schemas())
    with pytest.raises(DataValidationError, match=r"each need at least one image.*style/"):
        get_project(PROJECT).validate(settings)


# --- costs against hand computations ----------------------------------------------------------------------


@pytest.mark.unit
def test_gram_matrix_is_the_unrolled_activations_times_their_transpose():
    a = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [-1.0, 2.0]]]])  # (1, C=2, 2, 2)
    # A = [[1, 2, 3, 4], [0, 1, -1, 2]]: G = [[1+4+9+16, 0+2-3+8], [., 0+1+1+4]]
    np.testing.assert_allclose(gram_matrix(a)[0].numpy(), [[30.0, 7.0], [7.0, 6.0]])


@pytest.mark.unit
def test_content_and_style_costs_match_the_formulas_worked_by_hand():
    a_s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [-1.0, 2.0]]]])  # Gram [[30, 7], [7, 6]]
    a_g = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 0.0]]]])  # Gram [[2, 2], [2, 4]]
    # style: ((30-2)^2 + 2 * (7-2)^2 + (6-4)^2) / (4 * n_C^2 * (n_H n_W)^2) = (784 + 50 + 4) / (4 * 4 * 16)
    assert layer_style_cost(gram_matrix(a_s), a_g).item() == pytest.approx(838 / 256)
    # content: sum of squared differences / (4 n_H n_W n_C); differences 0,2,3,3 and -2,1,-1,2
    assert content_cost(a_s, a_g).item() == pytest.approx((0 + 4 + 9 + 9 + 4 + 1 + 1 + 4) / (4 * 2 * 2 * 2))
    # the style cost over layers is their weighted sum; a generated image with the style's Gram costs nothing
    grams = {"x": gram_matrix(a_s), "y": gram_matrix(a_s)}
    total = style_cost(grams, {"x": a_g, "y": a_s}, {"x": 0.25, "y": 0.75})
    assert total.item() == pytest.approx(0.25 * 838 / 256)


# --- feature nets -----------------------------------------------------------------------------------------


@pytest.mark.unit
def test_vgg19_loads_its_weights_from_a_file_and_taps_the_papers_layers_at_their_sizes(tmp_path):
    # RANDOM weights in the file: this checks the file path and shapes only (no VGG-19 ImageNet weights offline).
    import torchvision

    reference = torchvision.models.vgg19(weights=None)
    torch.save(reference.state_dict(), tmp_path / "vgg19-dcbb9e9d.pth")
    net = FeatureNet("vgg19", weights=tmp_path / "vgg19-dcbb9e9d.pth")
    x = torch.rand(1, 3, 32, 32)
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    torch.testing.assert_close(net(x, ["conv5_4"])["conv5_4"], reference.features[:36]((x - mean) / std))
    content_layer, style_layers = DEFAULT_LAYERS["vgg19"]
    feats = net(torch.rand(2, 3, 64, 64), [content_layer, *style_layers])
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        "conv1_1": (64, 64, 64),
        "conv2_1": (128, 32, 32),
        "conv3_1": (256, 16, 16),
        "conv4_1": (512, 8, 8),
        "conv4_2": (512, 8, 8),
        "conv5_1": (512, 4, 4),
    }
    assert all((v >= 0).all() for v in feats.values())  # taps are after the ReLU, as in the paper
    with pytest.raises(ValueError, match="has no layer.*conv6_1"):
        net(x, ["conv6_1"])
    with pytest.raises(ValueError, match="vgg19-dcbb9e9d.pth does not fit efficientnet_lite0"):
        FeatureNet("efficientnet_lite0", weights=tmp_path / "vgg19-dcbb9e9d.pth")


@pytest.mark.unit
def test_efficientnet_lite0_layers_are_its_pretrained_stem_and_blocks():
    net = FeatureNet("efficientnet_lite0", weights="imagenet")
    feats = net(torch.rand(1, 3, 64, 64), ["stem", "block0", "block2", "block4", "block7", "block15"])
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        "stem": (32, 32, 32),
        "block0": (16, 32, 32),
        "block2": (24, 16, 16),
        "block4": (40, 8, 8),
        "block7": (80, 4, 4),
        "block15": (320, 2, 2),
    }
    assert not any(p.requires_grad for p in net.parameters()) and not net.train().training
    random = FeatureNet("efficientnet_lite0", weights=None)
    assert not torch.equal(random.stages[0][0].weight, net.stages[0][0].weight)  # the package's weights loaded


@pytest.mark.unit
def test_each_pair_is_optimised_as_if_alone_in_its_batch():
    rng = np.random.default_rng(0)
    content, style = (rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8) for _ in range(2))
    net = FeatureNet("efficientnet_lite0", weights="imagenet")
    obj = Objective("block2", {"stem": 0.5, "block2": 0.5})
    batch, history = stylise(net, content, style, obj, OptimiseConfig(steps=5, lr=0.05))
    assert len(history) == 6 and history[-1]["style"].shape == (3,)
    alone, _ = stylise(net, content[:1], style[:1], obj, OptimiseConfig(steps=5, lr=0.05))
    # the same noise for the first image (same generator, drawn first), then per-pixel Adam updates
    assert np.abs(batch[:1].astype(int) - alone.astype(int)).max() <= 1


@pytest.mark.unit
@pytest.mark.parametrize("optimizer, lr", [("adam", 0.05), ("lbfgs", 1.0)])
def test_both_optimisers_lower_the_style_cost_of_the_pixels(optimizer, lr):
    rng = np.random.default_rng(1)
    content, style = (rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8) for _ in range(2))
    obj = Objective("block2", {"stem": 0.5, "block2": 0.5})
    images, history = stylise(
        FeatureNet("efficientnet_lite0"), content, style, obj, OptimiseConfig(steps=10, lr=lr, optimizer=optimizer)
    )
    assert (history[-1]["style"] < 0.5 * history[0]["style"]).all(), (history[0], history[-1])
    assert images.dtype == np.uint8 and images.shape == content.shape


# --- end to end -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline_run(prefect_server, tmp_path_factory, sample_data):
    from flows.pipeline import project_pipeline
    from tests.conftest import REPO, deep_merge

    root = tmp_path_factory.mktemp("style-root")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = deep_merge(params["projects"][PROJECT], SMALL) | {"data_dir": str(sample_data(PROJECT))}
    (root / "params.yaml").write_text(yaml.safe_dump({"defaults": params["defaults"], "projects": {PROJECT: section}}))
    return root, project_pipeline(project=PROJECT, root=str(root))


@pytest.mark.e2e
def test_style_cost_falls_far_below_its_start_and_below_the_content_images(pipeline_run):
    root, result = pipeline_run
    assert result["style_cost_ratio"] < 0.3, result  # 30 steps at 64 px: ~0.15 of the noisy start
    assert result["style_cost_vs_content_image"] < 0.3, result
    assert result["total_cost_ratio"] < 0.5, result
    assert result["style_cost"] < 0.3 * result["content_image_style_cost"]
    client = MlflowClient()
    run_id = result["run_id"]
    steps = [m.step for m in client.get_metric_history(run_id, "style_cost")]
    assert steps == [0, 10, 20, 30]
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"plots/loss_curves.png", "plots/stylised.png"} <= plots
    pairs = pd.read_csv(root / "outputs" / PROJECT / "plots" / "pairs.csv")
    assert len(pairs) == 6 and (pairs["style_cost"] < pairs["initial_style_cost"]).all()


@pytest.mark.integration
def test_registered_model_serves_stylised_images_and_its_score_equals_the_pipeline_metric(pipeline_run, sample_data):
    from flows.promotion import load_settings

    root, result = pipeline_run
    assert MlflowClient().get_model_version_by_alias(PROJECT, "challenger").version == result["model_version"]
    model = mlflow.pyfunc.load_model(f"models:/{PROJECT}@challenger")
    astronaut = np.asarray(Image.open(sample_data(PROJECT) / "content" / "astronaut.png"))  # 128 px, as a user has it
    rocket = skimage.data.rocket()  # a photo the pipeline never saw, 427 x 640
    out = model.predict(
        pd.DataFrame(
            {"content": [encode_png(astronaut), encode_png(rocket)], "style": ["brick.png", "immunohistochemistry.png"]}
        )
    )
    assert list(out["source"]) == ["trained", "optimised"]
    images = [decode_image(t) for t in out["image"]]
    assert all(x.shape == (64, 64, 3) for x in images)
    assert not np.array_equal(images[1], style_images.square(rocket, 64))  # restyled, not echoed
    spec, settings = load_settings(PROJECT, "params.yaml", root)
    data = spec.prepare(settings)
    small_rocket, stain = (
        style_images.square(rocket, 64),
        data.style[data.style_names.index("immunohistochemistry.png")],
    )
    plain = pair_costs(feature_net(settings), objective(settings), small_rocket[None], stain[None], small_rocket[None])
    assert out["style_cost"][1] < 0.7 * plain["style_cost"][0]  # 10 steps already move it towards the style
    with pytest.raises(Exception, match="unknown style"):
        model.predict(pd.DataFrame({"content": [encode_png(astronaut)], "style": ["monet.jpg"]}))
    score = spec.score(model, data, settings)
    for key in ("content_cost", "style_cost", "total_cost"):
        assert score[key] == pytest.approx(result[key], rel=1e-5)
