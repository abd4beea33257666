"""Keypoint regression pieces around the one training loop: image input, prediction in pixels and the masked
RMSE (``components.training.tasks.KeypointTask`` trains with masked MSE and mirrored flips through
``components.training.loop.fit``; the linear LR-down / momentum-up schedule is ``schedule: linear`` in
``components.training.optim``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from components.models.keypoint_cnn import to_pixels


def as_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 96, 96) -> float (N, 1, 96, 96) in [0, 1]."""
    return torch.as_tensor(np.asarray(images), dtype=torch.float32).unsqueeze(1) / 255


@torch.no_grad()
def predict_pixels(
    model: nn.Module, images: np.ndarray, device: torch.device | str = "cpu", batch_size: int = 256
) -> np.ndarray:
    """Predicted coordinates in pixels, float64 (N, outputs)."""
    model.eval().to(device)
    out = [
        to_pixels(model(as_input(images[i : i + batch_size]).to(device))).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out).double().numpy() if out else np.zeros((0, 0))


def masked_rmse(predicted: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error in pixels over the coordinates present (not NaN) in ``target``."""
    present = ~np.isnan(target)
    return float(np.sqrt(np.mean((predicted[present] - target[present]) ** 2)))
