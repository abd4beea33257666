"""Losses for dense nets: each returns ``(mean loss, d loss / d input)`` for a batch (rows are samples).

Classification losses take logits, not probabilities: the fused forms are numerically stable and their
gradients are simply (probability - target) / N.
"""

from __future__ import annotations

import numpy as np

from components.scratch.activations import sigmoid, softmax


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over all entries."""
    diff = pred - target
    return float(np.mean(diff * diff)), 2.0 * diff / diff.size


def binary_cross_entropy_with_logits(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """-mean(y log s(z) + (1-y) log(1-s(z))) for targets y in {0, 1}; z and y have the same shape."""
    y = y.astype(z.dtype, copy=False)
    # log(1 + e^z) - y z, written so that e^x only ever sees x <= 0
    loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return float(loss.mean()), (sigmoid(z) - y) / z.size


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """-mean log softmax(logits)[label] for integer labels in [0, K)."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1))
    loss = log_z - shifted[np.arange(n), labels]
    grad = softmax(logits)
    grad[np.arange(n), labels] -= 1
    return float(loss.mean()), grad / n


def one_hot(labels: np.ndarray, k: int, dtype=np.float64) -> np.ndarray:
    out = np.zeros((len(labels), k), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out
