"""Logistic regression as a one-neuron network: a = sigmoid(X w + b), trained by batch gradient descent.

``propagate`` is the whole forward and backward pass, vectorised over the batch (rows are samples). The cost
is recorded every ``record_every`` iterations, which gives the cost curve.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from components.errors import TrainingDiverged
from components.scratch.activations import sigmoid
from components.scratch.dense import as_features
from components.scratch.estimator_base import BaseEstimator, ClassifierMixin


def propagate(w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, float]:
    """(cost, dw, db) for the cross-entropy cost of sigmoid(X w + b) against labels y in {0, 1}."""
    z = X @ w + b
    # cross-entropy from the logit z: log(1 + e^z) - y z, stable for any z
    cost = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    dz = (sigmoid(z) - y) / len(y)
    return float(cost), X.T @ dz, float(dz.sum())


class LogisticRegressionNet(ClassifierMixin, BaseEstimator):
    """Binary classifier; weights start at zero (a single neuron has no symmetry to break)."""

    def __init__(self, lr: float = 0.005, iterations: int = 2000, record_every: int = 100):
        self.lr, self.iterations, self.record_every = lr, iterations, record_every

    def fit(self, X, y, on_record: Callable[[dict], None] | None = None) -> LogisticRegressionNet:
        X = as_features(X, np.float64)
        self.classes_, y_idx = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(f"logistic regression needs exactly two classes, got {self.classes_.tolist()}")
        w, b = np.zeros(X.shape[1]), 0.0
        self.costs_ = []
        for i in range(1, self.iterations + 1):
            cost, dw, db = propagate(w, b, X, y_idx)
            TrainingDiverged.check(i, cost, step="iteration")
            w -= self.lr * dw
            b -= self.lr * db
            if i % self.record_every == 0 or i == 1 or i == self.iterations:
                row = {"iteration": i, "cost": cost}
                self.costs_.append(row)
                if on_record is not None:
                    on_record(dict(row))
        self.coef_, self.intercept_ = w, b
        return self

    def decision_function(self, X) -> np.ndarray:
        return as_features(X, np.float64) @ self.coef_ + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        p = sigmoid(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]
