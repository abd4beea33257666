"""A frozen pretrained CNN that returns its activations at named layers: the eyes of neural style transfer.

    net = FeatureNet("efficientnet_lite0", weights="imagenet")       # real ImageNet weights, installed offline
    net = FeatureNet("vgg19", weights="models/vgg19-dcbb9e9d.pth")    # Gatys et al.'s network, from a FILE
    feats = net(images, ["block4", "stem"])                          # images: (N, 3, H, W) floats in [0, 1]

Layer names: ``vgg19`` taps the ReLU after each conv, named as in the paper (``conv1_1`` ... ``conv5_4``);
``efficientnet_lite0`` taps its stem and its 16 MBConv blocks (``stem``, ``block0`` ... ``block15``). The net
normalises the images itself the way its weights expect, and stops after the deepest layer asked for.
``weights=None`` gives random init: useful for shape tests only, random features carry no style.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from components.models.transfer import BACKBONES, HALF, IMAGENET, load_weights

STYLE_BACKBONES = ("efficientnet_lite0", "vgg19")

# Gatys et al.: content on conv4_2, style on the first conv of each of the five blocks, equally weighted.
# EfficientNet-Lite0 (at 128 px): the stem and blocks 0/2/4/7 end at 1/2, 1/2, 1/4, 1/8, 1/16 of the input;
# block 4 (the end of the 40-channel stage, 1/8) plays conv4_2's role.
DEFAULT_LAYERS: dict[str, tuple[str, dict[str, float]]] = {
    "vgg19": ("conv4_2", {f"conv{b}_1": 0.2 for b in range(1, 6)}),
    "efficientnet_lite0": ("block4", {"stem": 0.2, "block0": 0.2, "block2": 0.2, "block4": 0.2, "block7": 0.2}),
}


def _vgg19_stages(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """VGG-19's feature layers grouped so that each stage ends on a named ReLU (or a pool)."""
    stages, pending, block, conv = [], [], 1, 0
    for layer in net.features:
        pending.append(layer)
        if isinstance(layer, nn.Conv2d):
            conv += 1
        elif isinstance(layer, nn.ReLU):
            stages.append((f"conv{block}_{conv}", nn.Sequential(*pending)))
            pending = []
        elif isinstance(layer, nn.MaxPool2d):
            stages.append((f"pool{block}", nn.Sequential(*pending)))
            pending, block, conv = [], block + 1, 0
    return stages


class _Block(nn.Module):
    """One MBConv block of EfficientNet; drop-connect is off (the net is only ever evaluated)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x):
        return self.block(x, drop_connect_rate=None)


def _efficientnet_stages(net: nn.Module) -> list[tuple[str, nn.Module]]:
    # as EfficientNet.extract_features: stem = activation(bn0(conv_stem(x))), then the blocks one by one
    stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
    return [("stem", stem), *((f"block{i}", _Block(b)) for i, b in enumerate(net._blocks))]


class FeatureNet(nn.Module):
    def __init__(self, backbone: str = "efficientnet_lite0", weights: str | Path | None = "imagenet"):
        super().__init__()
        if backbone not in STYLE_BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r} for style transfer; known: {', '.join(STYLE_BACKBONES)}")
        if backbone == "vgg19":
            net = torchvision.models.vgg19(weights=None)
            stages, (mean, std) = _vgg19_stages(net), IMAGENET
        else:
            net = BACKBONES[backbone].build()
            stages, (mean, std) = _efficientnet_stages(net), (HALF, HALF)
        if weights is not None:
            load_weights(backbone, net, weights)  # strict: a file for another network fails here, naming it
        self.backbone, self.pretrained = backbone, weights is not None
        self.names = [name for name, _ in stages]
        self.stages = nn.ModuleList(stage for _, stage in stages)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def check_layers(self, layers) -> None:
        unknown = [n for n in layers if n not in self.names]
        if unknown:
            raise ValueError(f"{self.backbone} has no layer(s) {unknown}; its layers are {', '.join(self.names)}")

    def forward(self, images: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        """Activations at ``layers`` for ``images`` in [0, 1], shape (N, 3, H, W)."""
        self.check_layers(layers)
        wanted, deepest = set(layers), max(self.names.index(n) for n in layers)
        x, out = (images - self.mean) / self.std, {}
        for name, stage in zip(self.names[: deepest + 1], self.stages):
            x = stage(x)
            if name in wanted:
                out[name] = x
        return out

    def train(self, mode: bool = True) -> FeatureNet:
        return super().train(False)  # always inference mode: BatchNorm keeps its ImageNet statistics
