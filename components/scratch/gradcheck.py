"""Numerical gradient checking: central differences against analytic gradients, in float64."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences; ``f`` reads ``x`` in place (it is perturbed and restored)."""
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        plus = f()
        x[i] = old - eps
        minus = f()
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||): below 1e-7 means the backward pass is right."""
    num = np.linalg.norm(analytic - numeric)
    den = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(num / den) if den > 0 else 0.0


def sampled_numerical_gradient(
    f: Callable[[], float], x: np.ndarray, indices: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Central differences at the flat ``indices`` of ``x`` only: checks a large layer at a few hundred
    coordinates instead of all of them. Returns one value per index."""
    flat = x.reshape(-1)  # a view: perturbing it perturbs x
    if not np.shares_memory(flat, x):
        raise ValueError("x must be a contiguous array (reshape would copy it, and f would not see the perturbation)")
    out = np.empty(len(indices), dtype=np.float64)
    for j, i in enumerate(indices):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        out[j] = (plus - minus) / (2 * eps)
    return out
