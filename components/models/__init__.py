"""Model builders by name, so settings can say which network to build."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .cnn import MaskCNN
from .happy_cnn import HappyCNN
from .mc_dropout_cnn import GalCNN, MCDropoutCNN
from .mlp import MLP
from .resnet import ResNet50
from .transfer import TransferNet

BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mask_cnn": MaskCNN,
    "mlp": MLP,
    "mc_dropout_cnn": MCDropoutCNN,
    "gal_cnn": GalCNN,
    "happy_cnn": HappyCNN,
    "resnet50": ResNet50,
    "transfer": TransferNet,
}


def build_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(BUILDERS))}") from None
    return builder(num_classes=num_classes, **kwargs)
