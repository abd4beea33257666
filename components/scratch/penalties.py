"""Weight penalties of the NumPy networks' cost, shared by the dense and the convolutional nets.

For a batch of N samples: L2 adds l2 / (2N) * sum W^2 (gradient l2 / N * W), the course's form; L1 adds
l1 / N * sum |W| (gradient l1 / N * sign W, 0 at W = 0: a subgradient). Only weights are penalised, not biases.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def add_weight_penalties(
    params: dict[str, np.ndarray], grads: dict[str, np.ndarray], weights: Iterable[str], n: int, l1: float, l2: float
) -> float:
    """Add the penalties' gradients to ``grads`` in place; returns what they add to the loss."""
    weights, extra = list(weights), 0.0
    if l2:
        extra += l2 / (2 * n) * float(sum(np.sum(params[k] ** 2) for k in weights))
        for k in weights:
            grads[k] += (l2 / n) * params[k]
    if l1:
        extra += l1 / n * float(sum(np.sum(np.abs(params[k])) for k in weights))
        for k in weights:
            grads[k] += (l1 / n) * np.sign(params[k])
    return extra
