"""A single linear neuron, y = w x + b, fitted by batch gradient descent on the mean squared error.

The gradients are written out by hand (``mse_gradients``). Inputs are standardised inside ``fit`` so one
learning rate suits both parameters (raw Celsius values would make the loss surface a long thin valley
in which b crawls); ``coef_`` and ``intercept_`` are reported back in the original units.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from components.errors import TrainingDiverged
from components.scratch.estimator_base import BaseEstimator, RegressorMixin


def mse_gradients(w: float, b: float, x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(loss, dL/dw, dL/db) for L = mean((w x + b - y)^2)."""
    err = w * x + b - y
    return float(np.mean(err * err)), float(2 * np.mean(err * x)), float(2 * np.mean(err))


def _column(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2 and X.shape[1] == 1:
        return X[:, 0]
    if X.ndim == 1:
        return X
    raise ValueError(f"a single neuron takes one feature: expected shape (n,) or (n, 1), got {X.shape}")


class LinearNeuron(RegressorMixin, BaseEstimator):
    """scikit-learn style regressor (fit / predict / get_params), so conformal calibration can wrap it."""

    def __init__(self, lr: float = 0.1, epochs: int = 500, standardize: bool = True, seed: int = 0):
        self.lr, self.epochs, self.standardize, self.seed = lr, epochs, standardize, seed

    def fit(self, X, y, on_epoch: Callable[[dict], None] | None = None, log_every: int = 1) -> LinearNeuron:
        x, y = _column(X), np.asarray(y, dtype=np.float64).ravel()
        if len(x) != len(y):
            raise ValueError(f"X has {len(x)} rows but y has {len(y)}")
        mu, sd = (x.mean(), x.std() or 1.0) if self.standardize else (0.0, 1.0)
        xs = (x - mu) / sd
        rng = np.random.default_rng(self.seed)
        w, b = rng.normal(size=2)  # a random start, as in the notebook: the data must pull it to (1.8, 32)
        self.history_ = []
        for epoch in range(1, self.epochs + 1):
            loss, dw, db = mse_gradients(w, b, xs, y)
            TrainingDiverged.check(epoch, loss)
            w, b = w - self.lr * dw, b - self.lr * db
            if epoch % log_every == 0 or epoch == self.epochs:
                row = {"epoch": epoch, "train_loss": loss, "weight": w / sd, "bias": b - w * mu / sd}
                self.history_.append(row)
                if on_epoch is not None:
                    on_epoch(dict(row))
        self.coef_ = np.array([w / sd])
        self.intercept_ = float(b - w * mu / sd)
        self.n_features_in_ = 1
        return self

    def predict(self, X) -> np.ndarray:
        return self.coef_[0] * _column(X) + self.intercept_
