"""Model builders by name, so settings can say which network to build."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

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


FROM_THE_DATA = ("num_classes", "in_channels")  # the estimator passes these, from the labels and the images


def builder_arguments(name: str) -> dict[str, tuple[Any, Any]]:
    """The keyword arguments ``model.kwargs`` may give model ``name``: argument -> (type, default), the type
    resolved from the builder's annotations (``inspect.Parameter.empty`` where it has none or no default), so
    params.yaml can be checked when it loads instead of inside training."""
    builder = BUILDERS[name]
    hints = typing.get_type_hints(builder.__init__ if isinstance(builder, type) else builder)
    return {p.name: (hints.get(p.name, inspect.Parameter.empty), p.default)
            for p in inspect.signature(builder).parameters.values()
            if p.name not in FROM_THE_DATA and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def build_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(BUILDERS))}") from None
    return builder(num_classes=num_classes, **kwargs)
