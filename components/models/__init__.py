"""Model builders by name, so settings can say which network to build.

The names and what settings checks need of them are in components/models/catalog.py, torch-free; the builder
classes (torch) are imported when a model is built.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from components.models.catalog import BUILDER_PATHS, FROM_THE_DATA, builder_arguments, input_size_problem

if TYPE_CHECKING:
    from torch import nn


def builder(name: str) -> type[nn.Module]:
    """The class that builds model ``name`` (imports its module, and so torch)."""
    try:
        module, _, cls = BUILDER_PATHS[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(BUILDER_PATHS))}") from None
    return getattr(import_module(module), cls)


def __getattr__(attr: str) -> Any:
    # BUILDERS imports every builder (torch, torchvision): built on first use, so a settings check never does
    if attr == "BUILDERS":
        return {name: builder(name) for name in BUILDER_PATHS}
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def build_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    return builder(name)(num_classes=num_classes, **kwargs)


__all__ = ["BUILDER_PATHS", "FROM_THE_DATA", "build_model", "builder", "builder_arguments", "input_size_problem"]
