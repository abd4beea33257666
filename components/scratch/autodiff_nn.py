"""A feedforward net built on the autodiff engine: layers are Tensors, gradients come from ``backward()``.

Unlike ``dense.py`` nothing here has a hand-written backward pass; the engine derives every gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from components.errors import TrainingDiverged
from components.scratch.autodiff import Tensor, cross_entropy
from components.scratch.dense import as_features
from components.scratch.estimator_base import BaseEstimator, ClassifierMixin
from components.scratch.layers import init_weights
from components.scratch.optim import make_optimizer


class Linear:
    def __init__(self, fan_in: int, fan_out: int, rng: np.random.Generator, init: str = "he"):
        self.W = Tensor(init_weights(fan_in, fan_out, init, rng))
        self.b = Tensor(np.zeros(fan_out))

    def __call__(self, x: Tensor) -> Tensor:
        return x @ self.W + self.b

    def parameters(self) -> list[Tensor]:
        return [self.W, self.b]


class MLP:
    """sizes = (inputs, hidden..., outputs); ``activation`` between layers, logits out."""

    def __init__(self, sizes: Sequence[int], activation: str = "relu", init: str = "he", seed: int = 0):
        if activation not in ("relu", "tanh", "sigmoid"):
            raise ValueError(f"unknown activation {activation!r}; known: relu, tanh, sigmoid")
        rng = np.random.default_rng(seed)
        self.activation = activation
        self.layers = [Linear(i, o, rng, init) for i, o in zip(sizes[:-1], sizes[1:])]

    def __call__(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = getattr(x, self.activation)()
        return x

    def parameters(self) -> list[Tensor]:
        return [p for layer in self.layers for p in layer.parameters()]


class AutodiffMLPClassifier(ClassifierMixin, BaseEstimator):
    """scikit-learn style classifier: an MLP trained by minibatch gradients from the autodiff engine."""

    def __init__(
        self,
        hidden: Sequence[int] = (64,),
        activation: str = "relu",
        init: str = "he",
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 20,
        batch_size: int = 32,
        seed: int = 0,
    ):
        self.hidden, self.activation, self.init, self.optimizer = hidden, activation, init, optimizer
        self.lr, self.epochs, self.batch_size, self.seed = lr, epochs, batch_size, seed

    def fit(self, X, y, X_val=None, y_val=None, on_epoch: Callable[[dict], None] | None = None):
        X = as_features(X, np.float64)
        self.classes_, y_idx = np.unique(np.asarray(y), return_inverse=True)
        self.mlp_ = MLP((X.shape[1], *self.hidden, len(self.classes_)), self.activation, self.init, self.seed)
        params = self.mlp_.parameters()
        opt = make_optimizer(self.optimizer)
        rng = np.random.default_rng(self.seed)
        self.history_ = []
        for epoch in range(1, self.epochs + 1):
            order, total = rng.permutation(len(X)), 0.0
            for start in range(0, len(X), self.batch_size):
                idx = order[start : start + self.batch_size]
                loss = cross_entropy(self.mlp_(Tensor(X[idx])), y_idx[idx])
                for p in params:
                    p.grad = np.zeros_like(p.data)
                loss.backward()
                opt.step({i: p.data for i, p in enumerate(params)}, {i: p.grad for i, p in enumerate(params)}, self.lr)
                total += loss.data.item() * len(idx)
            row = {
                "epoch": epoch,
                "train_loss": total / len(X),
                "train_accuracy": float(np.mean(self._proba(X).argmax(1) == y_idx)),
            }
            TrainingDiverged.check(epoch, row["train_loss"])
            if X_val is not None:
                proba = self.predict_proba(X_val)
                yv = np.searchsorted(self.classes_, np.asarray(y_val))
                row["val_loss"] = float(-np.mean(np.log(np.clip(proba[np.arange(len(yv)), yv], 1e-12, 1))))
                row["val_accuracy"] = float(np.mean(proba.argmax(1) == yv))
            self.history_.append(row)
            if on_epoch is not None:
                on_epoch(dict(row))
        return self

    def _proba(self, X: np.ndarray) -> np.ndarray:
        logits = self.mlp_(Tensor(X)).data
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def predict_proba(self, X) -> np.ndarray:
        return self._proba(as_features(X, np.float64))

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]
