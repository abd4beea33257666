"""A reverse-mode automatic differentiation engine over NumPy arrays (micrograd, vectorised).

A ``Tensor`` holds an array, its gradient, the tensors it was computed from and a closure that pushes its
gradient back to them. ``loss.backward()`` orders the graph topologically and runs those closures from the
loss back to the leaves. Operations broadcast like NumPy; ``unbroadcast`` sums a gradient back to the shape
of the operand it belongs to.

    x = Tensor(np.random.randn(4, 3)); W = Tensor(np.random.randn(3, 2))
    loss = (x @ W).tanh().sum()
    loss.backward()          # W.grad == d loss / d W
"""

from __future__ import annotations

import numpy as np


def _leaf_backward() -> None:
    """A leaf has nothing upstream to send its gradient to."""


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes NumPy broadcast to produce it, so it matches ``shape`` again."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


class Tensor:
    def __init__(self, data, _parents: tuple[Tensor, ...] = (), _op: str = ""):
        self.data = np.asarray(data, dtype=np.float64)
        self.grad = np.zeros_like(self.data)
        self._parents = _parents
        self._op = _op
        self._backward = _leaf_backward

    def __getstate__(self) -> dict:
        # A pickled tensor is a leaf (data and grad): the graph's closures are rebuilt by the next forward pass.
        return {"data": self.data, "grad": self.grad}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["data"])
        self.grad = state["grad"]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, op={self._op or 'leaf'})"

    # ---- elementwise arithmetic (broadcasting) ----
    def __add__(self, other) -> Tensor:
        other = as_tensor(other)
        out = Tensor(self.data + other.data, (self, other), "+")

        def backward():
            self.grad += unbroadcast(out.grad, self.shape)
            other.grad += unbroadcast(out.grad, other.shape)

        out._backward = backward
        return out

    def __mul__(self, other) -> Tensor:
        other = as_tensor(other)
        out = Tensor(self.data * other.data, (self, other), "*")

        def backward():
            self.grad += unbroadcast(out.grad * other.data, self.shape)
            other.grad += unbroadcast(out.grad * self.data, other.shape)

        out._backward = backward
        return out

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("only constant exponents are supported: x ** 2.0, not x ** y")
        out = Tensor(self.data**exponent, (self,), f"**{exponent}")

        def backward():
            self.grad += out.grad * exponent * self.data ** (exponent - 1)

        out._backward = backward
        return out

    def __neg__(self) -> Tensor:
        return self * -1.0

    def __sub__(self, other) -> Tensor:
        return self + (-as_tensor(other))

    def __rsub__(self, other) -> Tensor:
        return as_tensor(other) + (-self)

    def __truediv__(self, other) -> Tensor:
        return self * as_tensor(other) ** -1.0

    def __rtruediv__(self, other) -> Tensor:
        return as_tensor(other) * self**-1.0

    __radd__ = __add__
    __rmul__ = __mul__

    # ---- linear algebra and reductions ----
    def __matmul__(self, other) -> Tensor:
        other = as_tensor(other)
        if self.data.ndim != 2 or other.data.ndim != 2:
            raise ValueError(f"matmul takes 2-D tensors, got shapes {self.shape} and {other.shape}")
        out = Tensor(self.data @ other.data, (self, other), "@")

        def backward():
            self.grad += out.grad @ other.data.T
            other.grad += self.data.T @ out.grad

        out._backward = backward
        return out

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        out = Tensor(self.data.sum(axis=axis, keepdims=keepdims), (self,), "sum")

        def backward():
            grad = out.grad
            if axis is not None and not keepdims:
                grad = np.expand_dims(grad, axis)
            self.grad += np.broadcast_to(grad, self.shape)

        out._backward = backward
        return out

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        count = self.data.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        return self.sum(axis, keepdims) * (1.0 / count)

    def reshape(self, *shape) -> Tensor:
        out = Tensor(self.data.reshape(*shape), (self,), "reshape")

        def backward():
            self.grad += out.grad.reshape(self.shape)

        out._backward = backward
        return out

    @property
    def T(self) -> Tensor:
        out = Tensor(self.data.T, (self,), "T")

        def backward():
            self.grad += out.grad.T

        out._backward = backward
        return out

    # ---- elementwise functions ----
    def _unary(self, value: np.ndarray, local_grad: np.ndarray, op: str) -> Tensor:
        out = Tensor(value, (self,), op)

        def backward():
            self.grad += out.grad * local_grad

        out._backward = backward
        return out

    def exp(self) -> Tensor:
        e = np.exp(self.data)
        return self._unary(e, e, "exp")

    def log(self) -> Tensor:
        return self._unary(np.log(self.data), 1.0 / self.data, "log")

    def tanh(self) -> Tensor:
        t = np.tanh(self.data)
        return self._unary(t, 1 - t * t, "tanh")

    def sigmoid(self) -> Tensor:
        e = np.exp(-np.abs(self.data))
        s = np.where(self.data >= 0, 1 / (1 + e), e / (1 + e))
        return self._unary(s, s * (1 - s), "sigmoid")

    def relu(self) -> Tensor:
        return self._unary(np.maximum(self.data, 0), (self.data > 0).astype(np.float64), "relu")

    # ---- the backward pass ----
    def backward(self) -> None:
        """Gradients of this (scalar) tensor with respect to every tensor it depends on, accumulated in .grad."""
        if self.data.size != 1:
            raise ValueError(f"backward() needs a scalar output, got shape {self.shape}; reduce it first (.sum())")
        order, seen = [], set()
        stack = [(self, False)]
        while stack:  # iterative depth-first topological sort: deep graphs do not hit the recursion limit
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node._parents if id(p) not in seen)
        self.grad = np.ones_like(self.data)
        for node in reversed(order):
            node._backward()


def as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def logsumexp(x: Tensor, axis: int = -1) -> Tensor:
    """log sum exp along ``axis`` (kept). The shift by the row maximum is a constant: it cancels exactly in
    the value and carries no gradient, so treating it as a leaf is correct and keeps exp from overflowing."""
    shift = Tensor(x.data.max(axis=axis, keepdims=True))
    return (x - shift).exp().sum(axis=axis, keepdims=True).log() + shift


def cross_entropy(logits: Tensor, labels: np.ndarray) -> Tensor:
    """Mean softmax cross-entropy of (N, K) logits against integer labels."""
    n, k = logits.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    log_probs = logits - logsumexp(logits, axis=1)
    return -(log_probs * onehot).sum() * (1.0 / n)
