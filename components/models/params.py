"""How big a network is, as the run's ``parameters`` info and the model cards report it."""

from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Scalars in the module's parameters; ``trainable_only`` leaves out frozen ones (``requires_grad=False``),
    which is what a fine-tuning phase actually moves. Shared parameters (tied weights) count once, as
    ``Module.parameters`` yields them once."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
