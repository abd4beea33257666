"""Building blocks of a dense net: weight initialisation, a fully connected layer, inverted dropout.

Rows are samples: a layer maps ``x`` (N, fan_in) to ``x @ W + b`` (N, fan_out). Each ``forward`` returns its
output and a cache; ``backward(dout, cache)`` returns the gradient for the input and for each parameter.
"""

from __future__ import annotations

import numpy as np

INITS = ("zeros", "random", "he", "xavier")


def init_weights(
    fan_in: int, fan_out: int, method: str, rng: np.random.Generator, dtype=np.float64, random_scale: float = 0.01
) -> np.ndarray:
    """zeros: every unit identical (symmetry never breaks); random: N(0, random_scale^2), blind to layer width;
    he: N(0, 2 / fan_in), keeps ReLU activations' variance; xavier (Glorot): N(0, 2 / (fan_in + fan_out))."""
    if method == "zeros":
        return np.zeros((fan_in, fan_out), dtype=dtype)
    std = {"random": random_scale, "he": np.sqrt(2.0 / fan_in), "xavier": np.sqrt(2.0 / (fan_in + fan_out))}.get(method)
    if std is None:
        raise ValueError(f"unknown initialisation {method!r}; known: {', '.join(INITS)}")
    return (rng.standard_normal((fan_in, fan_out)) * std).astype(dtype)


def dense_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x @ W + b, x


def dense_backward(dout: np.ndarray, x: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dW, db) for out = x @ W + b."""
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)


def dropout_mask(shape: tuple[int, ...], keep_prob: float, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """Inverted dropout: kept units are scaled by 1/keep_prob, so nothing changes at test time."""
    return (rng.random(shape) < keep_prob).astype(dtype) / keep_prob
