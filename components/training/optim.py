"""Optimizers and learning-rate schedules for ``components.training.loop.fit``, chosen by the train settings.

Optimizers: AdamW, SGD with momentum, SGD with Nesterov momentum, Adam (L2 in the gradient), RMSprop. Schedules, stepped once per optimizer
step: ``onecycle`` (warm up, then anneal), ``cosine``, ``constant``, and ``linear``: the LR falls and the
momentum rises on a straight line from the first epoch to the last, one value per epoch (the schedule of
Daniel Nouri's facial-keypoints tutorial: big careful steps first, then small ones that keep more history).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import nn


class OptimSettings(Protocol):
    """The fields of ``components.settings.TrainSettings`` read here (typed structurally: no pydantic import)."""

    epochs: int
    lr: float
    lr_end: float
    weight_decay: float
    schedule: str
    optimizer: str
    momentum: float
    momentum_end: float


def make_optimizer(model: nn.Module, config: OptimSettings, device: torch.device) -> torch.optim.Optimizer:
    # Fused kernels update all parameters in a few launches instead of several per tensor.
    fused = device.type == "cuda"
    if config.optimizer in ("sgd", "nesterov"):
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.optimizer == "nesterov",
            weight_decay=config.weight_decay,
            fused=fused,
        )
    if config.optimizer == "adam":  # weight_decay is added to the gradient (an L2 term), unlike AdamW's
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    if config.optimizer == "rmsprop":  # the course's RMSprop: no momentum (onecycle cycles it, as it does SGD's)
        return torch.optim.RMSprop(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)


def linear(start: float, end: float, epoch: int, epochs: int) -> float:
    """``start`` at epoch 1, ``end`` at epoch ``epochs``, on a straight line in between."""
    return start + (end - start) * (epoch - 1) / max(1, epochs - 1)


class LinearEpochSchedule:
    """LR (and, for SGD, momentum) set once per epoch on a straight line; stepped per optimizer step like the
    torch schedulers, so the loop treats every schedule alike. The values of epoch 1 are set on creation."""

    def __init__(self, optimizer: torch.optim.Optimizer, config: OptimSettings, steps_per_epoch: int):
        self.optimizer, self.steps_per_epoch, self.steps = optimizer, max(1, steps_per_epoch), 0
        self.epochs, self.lr, self.lr_end = config.epochs, config.lr, config.lr_end
        self.momentum = (config.momentum, config.momentum_end) if config.optimizer in ("sgd", "nesterov") else None
        self._apply(1)

    def values(self, epoch: int) -> dict[str, float]:
        """The LR (and momentum) of ``epoch``."""
        out = {"lr": linear(self.lr, self.lr_end, epoch, self.epochs)}
        if self.momentum is not None:
            out["momentum"] = linear(*self.momentum, epoch, self.epochs)
        return out

    def _apply(self, epoch: int) -> None:
        for group in self.optimizer.param_groups:
            group.update(self.values(epoch))

    def step(self) -> None:
        self.steps += 1
        if self.steps % self.steps_per_epoch == 0:  # the first step of the next epoch uses its values
            self._apply(min(self.steps // self.steps_per_epoch + 1, self.epochs))  # none beyond the last epoch

    def state_dict(self) -> dict:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]
        self._apply(min(self.steps // self.steps_per_epoch + 1, self.epochs))


def logged_values(optimizer: torch.optim.Optimizer, scheduler, epoch: int) -> dict[str, float]:
    """What an epoch's history row shows: a per-epoch schedule's values of that epoch (its last step has
    already set the next epoch's), a per-step schedule's LR after the epoch's last step."""
    if isinstance(scheduler, LinearEpochSchedule):
        return scheduler.values(epoch)
    return {"lr": optimizer.param_groups[0]["lr"]}


def make_scheduler(optimizer: torch.optim.Optimizer, config: OptimSettings, steps_per_epoch: int):
    if config.schedule == "linear":
        return LinearEpochSchedule(optimizer, config, steps_per_epoch)
    total = max(1, config.epochs * steps_per_epoch)
    # OneCycle's warm-up phase needs at least one step of its own: with pct_start=0.25 a run of under 8
    # steps (a tiny dataset, an active-learning round) divides by zero, so such runs anneal with cosine.
    if config.schedule == "onecycle" and total >= 8:
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total, pct_start=0.25)
    if config.schedule in ("cosine", "onecycle"):
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
