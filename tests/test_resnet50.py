"""ResNet-50 from identity and convolutional blocks: torchvision's architecture exactly, and it learns SIGNS."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
import yaml

from components.models import build_model
from components.models.resnet import ConvBlock, IdentityBlock, ResNet50

# A project trained through its own stages with a learning threshold is e2e; the rest are units.


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.unit
def test_parameter_count_is_torchvisions_at_1000_classes():
    ours, theirs = ResNet50(num_classes=1000), torchvision.models.resnet50(weights=None)
    assert count(ours) == count(theirs) == 25_557_032


@pytest.mark.unit
def test_same_network_as_torchvision_weight_for_weight():
    """Loading torchvision's weights tensor by tensor (in order) gives the same outputs: same architecture."""
    torch.manual_seed(0)
    theirs = torchvision.models.resnet50(weights=None, num_classes=6).eval()
    ours = build_model("resnet50", num_classes=6).eval()
    source, target = theirs.state_dict(), ours.state_dict()
    assert [v.shape for v in source.values()] == [v.shape for v in target.values()]
    ours.load_state_dict(dict(zip(target, source.values())))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)


@pytest.mark.unit
def test_identity_block_keeps_the_shape_and_conv_block_changes_it():
    x = torch.randn(1, 256, 8, 8)
    assert IdentityBlock(256, (64, 64, 256))(x).shape == x.shape
    assert ConvBlock(256, (128, 128, 512), stride=2)(x).shape == (1, 512, 4, 4)
    assert not hasattr(IdentityBlock(256, (64, 64, 256)), "shortcut")  # the shortcut of an identity block is x


@pytest.mark.e2e
def test_resnet50_project_validates_prepares_and_learns_on_a_small_slice(sample_data, tmp_path):
    """A shrunk run (120 images): the training loss falls steeply. The default run's test accuracy is in the
    README (well above the 1/6 of chance); training the full net for it takes minutes, too long for a test."""
    from components.projects import get_project

    project = get_project("resnet50")
    section = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())["projects"]["resnet50"]
    section.update(data_dir=str(sample_data("resnet50")), device="cpu")
    section["data"] = {**section["data"], "train_limit": 120}
    section["train"] = {**section["train"], "epochs": 8, "batch_size": 16}
    settings = project.Settings.model_validate(section)
    assert project.validate(settings).success
    data = project.prepare(settings)
    assert data.X_train.shape[1:] == (32, 32, 3)  # trained at the small CPU input size
    trained = project.train(data, settings, on_epoch=lambda stats: None, checkpoint_dir=tmp_path)
    assert trained.info["parameters"] == 25_557_032 - 1000 * 2049 + 6 * 2049  # the same net with a 6-class head
    losses = trained.history["train_loss"].to_numpy()
    assert losses[-1] < 0.5 * losses[0], losses
