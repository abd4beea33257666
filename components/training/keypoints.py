"""Training loop for keypoint regression: masked MSE, mirrored flips, and Nouri's adaptive schedule.

``components.training.loop.fit`` is built around class labels (it counts argmax hits), so regression with
missing targets gets this short loop of its own. Optimizers: SGD with Nesterov momentum whose learning rate
falls and momentum rises linearly from epoch to epoch (the schedule of Daniel Nouri's facial-keypoints
tutorial: big careful steps first, then small ones that keep more of their history), or AdamW with the
learning rate annealed the same linear way. Early stopping on the validation RMSE in pixels; the best
epoch's weights are kept.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from components.models.keypoint_cnn import flip_horizontally, masked_mse, to_pixels, to_unit


@dataclass
class KeypointTrainConfig:
    epochs: int = 30
    batch_size: int = 32
    optimizer: Literal["nesterov", "adamw"] = "nesterov"
    lr: float = 0.03  # first epoch
    lr_end: float = 0.001  # last epoch
    momentum: float = 0.9  # nesterov only: first epoch ...
    momentum_end: float = 0.99  # ... last epoch
    weight_decay: float = 0.0
    patience: int = 8
    flip: bool = True


def linear(start: float, end: float, epoch: int, epochs: int) -> float:
    """``start`` at epoch 1, ``end`` at epoch ``epochs``, on a straight line in between."""
    return start + (end - start) * (epoch - 1) / max(1, epochs - 1)


def make_optimizer(model: nn.Module, config: KeypointTrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "nesterov":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                               weight_decay=config.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def set_schedule(optimizer: torch.optim.Optimizer, config: KeypointTrainConfig, epoch: int) -> tuple[float, float]:
    lr = linear(config.lr, config.lr_end, epoch, config.epochs)
    momentum = linear(config.momentum, config.momentum_end, epoch, config.epochs)
    for group in optimizer.param_groups:
        group["lr"] = lr
        if config.optimizer == "nesterov":
            group["momentum"] = momentum
    return lr, momentum if config.optimizer == "nesterov" else math.nan


def as_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 96, 96) -> float (N, 1, 96, 96) in [0, 1]."""
    return torch.as_tensor(np.asarray(images), dtype=torch.float32).unsqueeze(1) / 255


@torch.no_grad()
def predict_pixels(model: nn.Module, images: np.ndarray, device: torch.device | str = "cpu",
                   batch_size: int = 256) -> np.ndarray:
    """Predicted coordinates in pixels, float64 (N, outputs)."""
    model.eval().to(device)
    out = [to_pixels(model(as_input(images[i:i + batch_size]).to(device))).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).double().numpy() if out else np.zeros((0, 0))


def masked_rmse(predicted: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error in pixels over the coordinates present (not NaN) in ``target``."""
    present = ~np.isnan(target)
    return float(np.sqrt(np.mean((predicted[present] - target[present]) ** 2)))


def fit_keypoints(model: nn.Module, X_train: np.ndarray, Y_train: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray,
                  config: KeypointTrainConfig, device: torch.device, mirror: np.ndarray, *, seed: int = 0,
                  on_epoch: Callable[[dict], None] | None = None) -> tuple[list[dict], int]:
    """Train ``model`` in place on images uint8 (N, 96, 96) and pixel coordinates (N, K*2, NaN = missing);
    ``mirror`` maps each of the K keypoints to its mirror partner. Returns the epoch rows and the best epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.to(device)
    X, Y = as_input(X_train), torch.as_tensor(Y_train, dtype=torch.float32)
    mirror = torch.as_tensor(mirror)
    optimizer = make_optimizer(model, config)
    rows, best, best_epoch, best_state = [], math.inf, 0, None
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        lr, momentum = set_schedule(optimizer, config, epoch)
        model.train()
        loss_sum, batches = 0.0, 0
        for idx in np.array_split(rng.permutation(len(X)), max(1, len(X) // config.batch_size)):
            x, y = X[idx], Y[idx]
            if config.flip:  # half of each batch mirrored: image flipped, keypoints mirrored and swapped
                flip = torch.as_tensor(rng.random(len(idx)) < 0.5)
                x[flip], y[flip] = flip_horizontally(x[flip], y[flip], mirror, width=x.shape[-1])
            loss = masked_mse(model(x.to(device)), to_unit(y).to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum, batches = loss_sum + loss.item(), batches + 1
        predicted = predict_pixels(model, X_val, device)
        val_rmse = masked_rmse(predicted, Y_val)
        row = {"epoch": epoch, "train_loss": loss_sum / batches,
               "val_loss": float(np.nanmean(((predicted - Y_val) / 48) ** 2)), "val_rmse": val_rmse, "lr": lr,
               **({} if math.isnan(momentum) else {"momentum": momentum}), "seconds": time.perf_counter() - started}
        rows.append(row)
        if on_epoch is not None:
            on_epoch(dict(row))
        if val_rmse < best:
            best, best_epoch, best_state = val_rmse, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return rows, best_epoch
