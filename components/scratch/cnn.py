"""A small convolutional network in NumPy, and a scikit-learn style classifier that trains it.

    ConvNet:        [conv -> ReLU -> pool] * blocks -> flatten -> [dense -> ReLU] * hidden -> dense (logits)
    ConvClassifier: fit/predict_proba on uint8 NHWC images, minibatches, any optimiser in ``optim.py``

Convolution and pooling come from ``conv.py``; dense layers, initialisation, the softmax cross-entropy and
the optimisers are the ones the dense nets use. Train in float32 for speed; gradient checks use float64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from components.errors import TrainingDiverged
from components.scratch.activations import softmax
from components.scratch.conv import POOLS, conv_backward, conv_forward, output_size
from components.scratch.estimator_base import BaseEstimator, ClassifierMixin
from components.scratch.layers import dense_backward, dense_forward, init_weights
from components.scratch.losses import softmax_cross_entropy
from components.scratch.optim import decayed_lr, make_optimizer
from components.scratch.penalties import add_weight_penalties


@dataclass(frozen=True)
class ConvBlock:
    filters: int
    kernel: int = 3
    stride: int = 1
    padding: int = 1
    pool: str = "max"  # "max", "avg" or "none"
    pool_size: int = 2

    def __post_init__(self):
        if self.pool not in (*POOLS, "none"):
            raise ValueError(f"unknown pooling {self.pool!r}; known: max, avg, none")


class ConvNet:
    def __init__(
        self,
        input_shape: tuple[int, int, int],
        blocks: Sequence[ConvBlock],
        hidden: Sequence[int],
        n_classes: int,
        seed: int = 0,
        dtype=np.float64,
    ):
        self.blocks, self.hidden = tuple(blocks), tuple(hidden)
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        c, h, w = input_shape
        for i, blk in enumerate(self.blocks, start=1):
            # He initialisation with fan_in = C * k * k, the inputs each output sums over
            W = init_weights(c * blk.kernel**2, blk.filters, "he", rng, dtype)
            self.params[f"conv{i}.W"] = np.ascontiguousarray(W.T.reshape(blk.filters, c, blk.kernel, blk.kernel))
            self.params[f"conv{i}.b"] = np.zeros(blk.filters, dtype=dtype)
            c = blk.filters
            h, w = (
                output_size(h, blk.kernel, blk.stride, blk.padding),
                output_size(w, blk.kernel, blk.stride, blk.padding),
            )
            if blk.pool != "none":
                h, w = output_size(h, blk.pool_size, blk.pool_size, 0), output_size(w, blk.pool_size, blk.pool_size, 0)
        sizes = (c * h * w, *self.hidden, n_classes)
        for j, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            self.params[f"fc{j}.W"] = init_weights(fan_in, fan_out, "he", rng, dtype)
            self.params[f"fc{j}.b"] = np.zeros(fan_out, dtype=dtype)
        self.n_dense = len(sizes) - 1

    def parameter_count(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, list]:
        """Logits (N, classes) for X (N, C, H, W), and the caches ``backward`` needs."""
        caches, a = [], X
        for i, blk in enumerate(self.blocks, start=1):
            z, conv_cache = conv_forward(
                a, self.params[f"conv{i}.W"], self.params[f"conv{i}.b"], blk.stride, blk.padding
            )
            a = np.maximum(z, 0)
            pool_cache = None
            if blk.pool != "none":
                a, pool_cache = POOLS[blk.pool][0](a, blk.pool_size)
            caches.append((conv_cache, z, pool_cache))
        conv_shape = a.shape
        a = a.reshape(len(a), -1)
        for j in range(1, self.n_dense + 1):
            z, x_in = dense_forward(a, self.params[f"fc{j}.W"], self.params[f"fc{j}.b"])
            caches.append((x_in, z))
            a = np.maximum(z, 0) if j < self.n_dense else z
        return a, [conv_shape, *caches]

    def backward(self, dlogits: np.ndarray, caches: list) -> dict[str, np.ndarray]:
        conv_shape, conv_caches, dense_caches = (
            caches[0],
            caches[1 : 1 + len(self.blocks)],
            caches[1 + len(self.blocks) :],
        )
        grads, d = {}, dlogits
        for j in range(self.n_dense, 0, -1):
            x_in, z = dense_caches[j - 1]
            if j < self.n_dense:
                d = d * (z > 0)
            d, grads[f"fc{j}.W"], grads[f"fc{j}.b"] = dense_backward(d, x_in, self.params[f"fc{j}.W"])
        d = d.reshape(conv_shape)
        for i in range(len(self.blocks), 0, -1):
            blk = self.blocks[i - 1]
            conv_cache, z, pool_cache = conv_caches[i - 1]
            if pool_cache is not None:
                d = POOLS[blk.pool][1](d, pool_cache)
            d = d * (z > 0)
            d, grads[f"conv{i}.W"], grads[f"conv{i}.b"] = conv_backward(d, conv_cache, self.params[f"conv{i}.W"])
        return grads

    def loss_and_grads(
        self, X: np.ndarray, y: np.ndarray, l2: float = 0.0, l1: float = 0.0
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Mean softmax cross-entropy (plus l2 / (2N) * sum of squared weights and l1 / N * sum of absolute
        weights) and its gradients."""
        logits, caches = self.forward(X)
        loss, dlogits = softmax_cross_entropy(logits, y)
        grads = self.backward(dlogits, caches)
        loss += add_weight_penalties(self.params, grads, [k for k in self.params if k.endswith(".W")], len(X), l1, l2)
        return loss, grads

    def predict_proba(self, X: np.ndarray, chunk: int = 2048) -> np.ndarray:
        # softmax in float64: float32 probabilities do not sum to one closely enough for scikit-learn's checks
        parts = [softmax(self.forward(X[i : i + chunk])[0].astype(np.float64)) for i in range(0, len(X), chunk)]
        return np.concatenate(parts) if parts else np.empty((0, self.params[f"fc{self.n_dense}.b"].size))


def as_images(X, dtype, grayscale: bool = True) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, C) -> float (N, C, H, W) in [0, 1]; grayscale averages the channels."""
    X = np.asarray(X)
    if X.ndim == 3:
        X = X[..., None]
    if X.ndim != 4:
        raise ValueError(f"expected images shaped (N, H, W) or (N, H, W, C), got {X.shape}")
    X = X.astype(dtype) / (255 if X.dtype == np.uint8 else 1)
    if grayscale:
        X = X.mean(axis=-1, keepdims=True)
    return np.ascontiguousarray(X.transpose(0, 3, 1, 2))


class ConvClassifier(ClassifierMixin, BaseEstimator):
    """A ConvNet with a softmax head trained by minibatch gradient descent; keeps the weights of the epoch with
    the lowest validation loss when validation data is given."""

    def __init__(
        self,
        blocks: Sequence[Mapping] = ({"filters": 16}, {"filters": 32, "pool": "avg"}),
        hidden: Sequence[int] = (64,),
        grayscale: bool = True,
        optimizer: str = "adam",
        lr: float = 2e-3,
        epochs: int = 15,
        batch_size: int = 32,
        l2: float = 0.0,
        decay: str = "none",
        decay_rate: float = 0.0,
        dtype: str = "float32",
        seed: int = 0,
        l1: float = 0.0,
    ):
        self.l1 = l1
        self.blocks, self.hidden, self.grayscale, self.optimizer, self.lr = blocks, hidden, grayscale, optimizer, lr
        self.epochs, self.batch_size, self.l2, self.decay, self.decay_rate = epochs, batch_size, l2, decay, decay_rate
        self.dtype, self.seed = dtype, seed

    def fit(self, X, y, X_val=None, y_val=None, on_epoch: Callable[[dict], None] | None = None) -> ConvClassifier:
        dtype = np.dtype(self.dtype)
        X = as_images(X, dtype, self.grayscale)
        self.classes_, y_idx = np.unique(np.asarray(y), return_inverse=True)
        rng = np.random.default_rng(self.seed)
        self.net_ = ConvNet(
            X.shape[1:], [ConvBlock(**b) for b in self.blocks], self.hidden, len(self.classes_), self.seed, dtype
        )
        opt = make_optimizer(self.optimizer)
        val = (
            (as_images(X_val, dtype, self.grayscale), np.searchsorted(self.classes_, np.asarray(y_val)))
            if X_val is not None
            else None
        )
        self.history_, best = [], (np.inf, None)
        for epoch in range(1, self.epochs + 1):
            lr = decayed_lr(self.lr, epoch - 1, self.decay, self.decay_rate)
            order, total = rng.permutation(len(X)), 0.0
            for start in range(0, len(X), self.batch_size):
                idx = order[start : start + self.batch_size]
                loss, grads = self.net_.loss_and_grads(X[idx], y_idx[idx], self.l2, self.l1)
                opt.step(self.net_.params, grads, lr)
                total += loss * len(idx)
            row = {"epoch": epoch, "lr": lr, "train_loss": total / len(X)}
            TrainingDiverged.check(epoch, row["train_loss"])
            if val is not None:
                proba = self.net_.predict_proba(val[0])
                row["val_loss"] = float(-np.mean(np.log(np.clip(proba[np.arange(len(proba)), val[1]], 1e-12, 1))))
                row["val_accuracy"] = float(np.mean(proba.argmax(1) == val[1]))
                if row["val_loss"] < best[0]:
                    best = (row["val_loss"], epoch, {k: v.copy() for k, v in self.net_.params.items()})
            self.history_.append(row)
            if on_epoch is not None:
                on_epoch(dict(row))
        self.best_epoch_ = best[1] if best[1] is not None else self.epochs
        if best[1] is not None:
            self.net_.params = best[2]
        return self

    def predict_proba(self, X) -> np.ndarray:
        X = as_images(X, self.net_.params["conv1.W"].dtype, self.grayscale)
        return self.net_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]
