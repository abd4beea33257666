"""Activations for dense nets, vectorised over a batch (rows are samples).

Each activation is a pair: ``forward(z) -> a`` and ``backward(da, z, a) -> dz``. The backward pass gets both
the pre-activation ``z`` and the output ``a`` because sigmoid and tanh are cheapest from ``a``, ReLU from ``z``.
Softmax is not here: it is fused with cross-entropy in ``losses.py`` (its Jacobian then collapses to p - y).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow warnings for large |z|
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Activation:
    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


# Module-level functions, not lambdas: a trained net must pickle (the registry stores it with joblib).
def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


def relu_backward(da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return da * (z > 0)


def sigmoid_backward(da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return da * a * (1 - a)


def tanh_backward(da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return da * (1 - a * a)


def identity(z: np.ndarray) -> np.ndarray:
    return z


def identity_backward(da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return da


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", relu, relu_backward),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_backward),
    "tanh": Activation("tanh", np.tanh, tanh_backward),
    "identity": Activation("identity", identity, identity_backward),
}


def get_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None
