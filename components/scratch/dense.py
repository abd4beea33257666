"""An L-layer fully connected network in NumPy, and a scikit-learn style classifier that trains it.

    DenseNet:        parameters W1, b1, ..., WL, bL; forward/backward by hand; L2 and inverted dropout
    DenseClassifier: fit/predict_proba over minibatches with any optimiser in ``optim.py`` and LR decay

Everything is vectorised over the batch (rows are samples); the only Python loops run over layers and
minibatches. Train in float32 for speed; gradient checks use float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from components.errors import TrainingDiverged
from components.scratch.activations import get_activation, identity, sigmoid, softmax
from components.scratch.estimator_base import BaseEstimator, ClassifierMixin
from components.scratch.layers import dense_backward, dense_forward, dropout_mask, init_weights
from components.scratch.losses import binary_cross_entropy_with_logits, mse, softmax_cross_entropy
from components.scratch.optim import decayed_lr, make_optimizer
from components.scratch.penalties import add_weight_penalties

OUTPUT_LOSSES = {"softmax": softmax_cross_entropy, "sigmoid": binary_cross_entropy_with_logits, "linear": mse}


class DenseNet:
    """sizes = (inputs, hidden..., outputs); hidden layers use ``activation``, the last layer outputs logits
    and ``output`` names the loss applied to them (softmax cross-entropy, sigmoid cross-entropy or MSE)."""

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        output: str = "softmax",
        init: str = "he",
        seed: int = 0,
        dtype=np.float64,
        random_scale: float = 0.01,
    ):
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input and an output size, got {tuple(sizes)}")
        if output not in OUTPUT_LOSSES:
            raise ValueError(f"unknown output {output!r}; known: {', '.join(OUTPUT_LOSSES)}")
        self.sizes, self.activation, self.output = tuple(int(s) for s in sizes), get_activation(activation), output
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        for layer, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            self.params[f"W{layer}"] = init_weights(fan_in, fan_out, init, rng, dtype, random_scale)
            self.params[f"b{layer}"] = np.zeros(fan_out, dtype=dtype)

    @property
    def depth(self) -> int:
        return len(self.sizes) - 1

    def forward(self, X: np.ndarray, keep_prob: float = 1.0, rng: np.random.Generator | None = None):
        """Logits and the caches backward needs. Dropout (keep_prob < 1) applies to hidden layers only."""
        caches, a = [], X
        for layer in range(1, self.depth + 1):
            z, x_in = dense_forward(a, self.params[f"W{layer}"], self.params[f"b{layer}"])
            if layer == self.depth:
                caches.append((x_in, None, None, None))
                return z, caches
            a = self.activation.forward(z)
            mask = dropout_mask(a.shape, keep_prob, rng, a.dtype) if keep_prob < 1 else None
            caches.append((x_in, z, a, mask))
            if mask is not None:
                a = a * mask
        raise AssertionError("unreachable")

    def backward(self, dlogits: np.ndarray, caches) -> dict[str, np.ndarray]:
        grads, d = {}, dlogits
        for layer in range(self.depth, 0, -1):
            x_in, z, a, mask = caches[layer - 1]
            if layer < self.depth:
                if mask is not None:
                    d = d * mask
                d = self.activation.backward(d, z, a)
            d, grads[f"W{layer}"], grads[f"b{layer}"] = dense_backward(d, x_in, self.params[f"W{layer}"])
        return grads

    def loss_and_grads(
        self,
        X: np.ndarray,
        y: np.ndarray,
        l2: float = 0.0,
        keep_prob: float = 1.0,
        rng: np.random.Generator | None = None,
        l1: float = 0.0,
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Loss (with the L2 penalty l2 / (2N) * sum ||W||^2 and the L1 penalty l1 / N * sum |W|) and its gradient
        for every parameter."""
        logits, caches = self.forward(X, keep_prob, rng)
        loss, dlogits = OUTPUT_LOSSES[self.output](logits, y)
        grads = self.backward(dlogits, caches)
        weights = [k for k in self.params if k.startswith("W")]
        loss += add_weight_penalties(self.params, grads, weights, X.shape[0], l1, l2)
        return loss, grads

    def predict_output(self, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Probabilities (softmax / sigmoid head) or values (linear head), in chunks to bound memory."""
        squash = {"softmax": softmax, "sigmoid": sigmoid, "linear": identity}[self.output]
        return np.concatenate(
            [squash(self.forward(X[i : i + chunk])[0]) for i in range(0, len(X), chunk)]
            or [np.empty((0, self.sizes[-1]))]
        )


def as_features(X: np.ndarray, dtype) -> np.ndarray:
    """Flatten each sample to a row; uint8 images are scaled to [0, 1]."""
    X = np.asarray(X)
    flat = X.reshape(len(X), -1)
    return flat.astype(dtype) / 255 if X.dtype == np.uint8 else flat.astype(dtype)


class DenseClassifier(ClassifierMixin, BaseEstimator):
    """A DenseNet with a softmax head, trained by minibatch gradient descent.

    ``batch_size=None`` (or ``optimizer='gd'``) is batch gradient descent: one step per epoch on all samples.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (128,),
        activation: str = "relu",
        init: str = "he",
        optimizer: str = "adam",
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epochs: int = 10,
        batch_size: int | None = 64,
        l2: float = 0.0,
        keep_prob: float = 1.0,
        decay: str = "none",
        decay_rate: float = 0.0,
        decay_interval: int = 1,
        random_scale: float = 0.01,
        dtype: str = "float32",
        seed: int = 0,
        l1: float = 0.0,
    ):
        self.l1 = l1
        self.hidden, self.activation, self.init, self.optimizer, self.lr = hidden, activation, init, optimizer, lr
        self.beta1, self.beta2, self.epochs, self.batch_size, self.l2 = beta1, beta2, epochs, batch_size, l2
        self.keep_prob, self.decay, self.decay_rate, self.decay_interval = keep_prob, decay, decay_rate, decay_interval
        self.random_scale, self.dtype, self.seed = random_scale, dtype, seed

    def fit(
        self, X, y, X_val=None, y_val=None, on_epoch: Callable[[dict], None] | None = None, monitor_size: int = 5000
    ) -> DenseClassifier:
        """Train; after each epoch record lr, train loss, accuracy on (up to ``monitor_size``) training samples
        and, given validation data, validation loss and accuracy in ``history_`` and pass them to ``on_epoch``."""
        dtype = np.dtype(self.dtype)
        X = as_features(X, dtype)
        self.classes_, y_idx = np.unique(np.asarray(y), return_inverse=True)
        rng = np.random.default_rng(self.seed)
        self.net_ = DenseNet(
            (X.shape[1], *self.hidden, len(self.classes_)),
            self.activation,
            "softmax",
            self.init,
            self.seed,
            dtype,
            self.random_scale,
        )
        opt = make_optimizer(self.optimizer, self.beta1, self.beta2)
        batch = len(X) if self.batch_size is None or self.optimizer == "gd" else int(self.batch_size)
        monitor = rng.permutation(len(X))[:monitor_size]
        val = (
            (as_features(X_val, dtype), np.searchsorted(self.classes_, np.asarray(y_val)))
            if X_val is not None
            else None
        )
        self.history_ = []
        for epoch in range(self.epochs):
            lr = decayed_lr(self.lr, epoch, self.decay, self.decay_rate, self.decay_interval)
            order = rng.permutation(len(X))
            total = 0.0
            for start in range(0, len(X), batch):
                idx = order[start : start + batch]
                loss, grads = self.net_.loss_and_grads(X[idx], y_idx[idx], self.l2, self.keep_prob, rng, self.l1)
                opt.step(self.net_.params, grads, lr)
                total += loss * len(idx)
            row = {
                "epoch": epoch + 1,
                "lr": lr,
                "train_loss": total / len(X),
                "train_accuracy": self._accuracy(X[monitor], y_idx[monitor]),
            }
            TrainingDiverged.check(epoch + 1, row["train_loss"])
            if val is not None:
                proba = self.net_.predict_output(val[0])
                row["val_loss"] = float(-np.mean(np.log(np.clip(proba[np.arange(len(proba)), val[1]], 1e-12, 1))))
                row["val_accuracy"] = float(np.mean(proba.argmax(1) == val[1]))
            self.history_.append(row)
            if on_epoch is not None:
                on_epoch(dict(row))
        return self

    def _accuracy(self, X: np.ndarray, y_idx: np.ndarray) -> float:
        return float(np.mean(self.net_.predict_output(X).argmax(1) == y_idx))

    def predict_proba(self, X) -> np.ndarray:
        proba = self.net_.predict_output(as_features(X, self.net_.params["W1"].dtype)).astype(np.float64)
        return proba / proba.sum(axis=1, keepdims=True)  # float32 rows sum to 1 only within ~1e-7

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]
