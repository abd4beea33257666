"""Optimisers and learning-rate decay for parameters held in a dict ``{name: array}``.

Batch gradient descent and minibatch SGD are the same update rule (``SGD``); they differ only in how many
samples each gradient averages over, which the training loop decides. The updates change arrays in place.
"""

from __future__ import annotations

import math

import numpy as np

Params = dict[str, np.ndarray]


class SGD:
    def step(self, params: Params, grads: Params, lr: float) -> None:
        for k, g in grads.items():
            params[k] -= lr * g


class Momentum:
    """Exponentially weighted average of the gradients: v = beta v + (1 - beta) g; p -= lr v."""

    def __init__(self, beta: float = 0.9):
        self.beta, self.v = beta, {}

    def step(self, params: Params, grads: Params, lr: float) -> None:
        for k, g in grads.items():
            v = self.v.setdefault(k, np.zeros_like(g))
            v *= self.beta
            v += (1 - self.beta) * g
            params[k] -= lr * v


class RMSProp:
    """Divide by a running root mean square of the gradients: s = beta s + (1 - beta) g^2; p -= lr g / sqrt(s)."""

    def __init__(self, beta: float = 0.9, eps: float = 1e-8):
        self.beta, self.eps, self.s = beta, eps, {}

    def step(self, params: Params, grads: Params, lr: float) -> None:
        for k, g in grads.items():
            s = self.s.setdefault(k, np.zeros_like(g))
            s *= self.beta
            s += (1 - self.beta) * g * g
            params[k] -= lr * g / (np.sqrt(s) + self.eps)


class Adam:
    """Momentum and RMSProp together, both bias-corrected for their zero start."""

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m, self.v, self.t = {}, {}, 0

    def step(self, params: Params, grads: Params, lr: float) -> None:
        self.t += 1
        c1, c2 = 1 - self.beta1**self.t, 1 - self.beta2**self.t
        for k, g in grads.items():
            m = self.m.setdefault(k, np.zeros_like(g))
            v = self.v.setdefault(k, np.zeros_like(g))
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            params[k] -= lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


OPTIMIZERS = ("gd", "sgd", "momentum", "rmsprop", "adam")


def make_optimizer(name: str, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
    """'gd' and 'sgd' both give plain SGD (full batch vs minibatches is the caller's batch size).
    beta1 decays first moments (momentum, Adam), beta2 second moments (RMSProp, Adam)."""
    if name in ("gd", "sgd"):
        return SGD()
    if name == "momentum":
        return Momentum(beta1)
    if name == "rmsprop":
        return RMSProp(beta2, eps)
    if name == "adam":
        return Adam(beta1, beta2, eps)
    raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")


DECAYS = ("none", "inverse_time", "exponential", "step")


def decayed_lr(lr0: float, epoch: int, kind: str = "none", rate: float = 0.0, interval: int = 1) -> float:
    """Learning rate for ``epoch`` (0-based).

    inverse_time: lr0 / (1 + rate * epoch); exponential: lr0 * exp(-rate * epoch);
    step: lr0 / (1 + rate * floor(epoch / interval)), the inverse-time rule applied every ``interval`` epochs.
    """
    if kind == "none":
        return lr0
    if kind == "inverse_time":
        return lr0 / (1 + rate * epoch)
    if kind == "exponential":
        return lr0 * math.exp(-rate * epoch)
    if kind == "step":
        return lr0 / (1 + rate * (epoch // max(1, interval)))
    raise ValueError(f"unknown learning-rate decay {kind!r}; known: {', '.join(DECAYS)}")
