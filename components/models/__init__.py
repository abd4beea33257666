"""Model builders by name, so settings can say which network to build."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
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
    return {
        p.name: (hints.get(p.name, inspect.Parameter.empty), p.default)
        for p in inspect.signature(builder).parameters.values()
        if p.name not in FROM_THE_DATA and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def input_size_problem(name: str, kwargs: Mapping[str, Any], image_size: int, channels: int) -> tuple[str, str] | None:
    """Why model ``name`` built with ``kwargs`` would crash on (image_size, image_size, channels) inputs, as
    (the ``kwargs`` key at fault or '' for the image size, why); None when it takes them. Checked when
    params.yaml loads, so the mismatch does not surface at the first forward pass."""
    args = {k: default for k, (_, default) in builder_arguments(name).items()} | dict(kwargs)
    pools = {"mask_cnn": args.get("depth"), "mc_dropout_cnn": 2}.get(name)  # 2x2 max pools, each halving
    if pools is not None and image_size < 2**pools:
        return "", f"{BUILDERS[name].__name__} pools {pools} times, so it needs images of at least {2**pools} px"
    if name in ("happy_cnn", "gal_cnn") and args["image_size"] != image_size:  # its dense layer is sized by it
        return "image_size", (
            f"{BUILDERS[name].__name__} is built for {args['image_size']} px images but the "
            f"data are resized to {image_size} px (data.image_size)"
        )
    if name == "mlp" and args["in_features"] != image_size * image_size * channels:
        return "in_features", (
            f"the flattened images have {image_size}*{image_size}*{channels} = "
            f"{image_size * image_size * channels} values, not {args['in_features']}"
        )
    if name == "transfer":
        from components.models.transfer import BACKBONES

        smallest = BACKBONES[args["backbone"]].min_size
        if image_size < smallest:
            return "backbone", f"{args['backbone']} needs images of at least {smallest} px"
    return None


def build_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(BUILDERS))}") from None
    return builder(num_classes=num_classes, **kwargs)
