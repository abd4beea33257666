"""Model builders by name, so settings can say which network to build."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from components.models.cnn import MaskCNN
from components.models.happy_cnn import HappyCNN
from components.models.mc_dropout_cnn import GalCNN, MCDropoutCNN
from components.models.mlp import MLP
from components.models.resnet import ResNet50
from components.models.transfer import TransferNet

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
