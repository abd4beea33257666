"""Convolution and pooling in NumPy, forward and backward, on NCHW batches.

Every window of the (padded) input is a strided *view* (``sliding_window_view``), so a convolution is one
matrix product over all samples and positions (im2col); nothing loops over samples. The backward passes
scatter window gradients back with a loop over the kernel offsets only (kh * kw small steps, each
vectorised over the whole batch), which also handles overlapping windows (stride < kernel).

Shapes: x (N, C, H, W); conv weights W (F, C, kh, kw), bias b (F,); outputs (N, F, OH, OW) with
OH = (H + 2 pad - kh) // stride + 1.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    out = (size + 2 * pad - kernel) // stride + 1
    if out < 1:
        raise ValueError(f"kernel {kernel} with stride {stride} and padding {pad} does not fit an input of size {size}")
    return out


def windows(x: np.ndarray, kh: int, kw: int, stride: int, pad: int) -> np.ndarray:
    """A read-only view (N, C, OH, OW, kh, kw) of every kh x kw window of the zero-padded ``x``."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]


def scatter_windows(dwin: np.ndarray, x_shape: tuple[int, ...], stride: int, pad: int) -> np.ndarray:
    """Adjoint of ``windows``: add each window's gradient (N, C, OH, OW, kh, kw) back onto the input (N, C, H, W)."""
    n, c, h, w = x_shape
    _, _, oh, ow, kh, kw = dwin.shape
    dx = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += dwin[..., i, j]
    return dx[:, :, pad : pad + h, pad : pad + w]


class ConvCache(NamedTuple):
    cols: np.ndarray  # (N * OH * OW, C * kh * kw): the im2col matrix
    x_shape: tuple[int, ...]
    stride: int
    pad: int


def conv_forward(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, ConvCache]:
    n, c, h, w = x.shape
    f, c_w, kh, kw = W.shape
    if c != c_w:
        raise ValueError(f"input has {c} channels but the filters expect {c_w}")
    oh, ow = output_size(h, kh, stride, pad), output_size(w, kw, stride, pad)
    # (N, C, OH, OW, kh, kw) -> rows (n, oh, ow), columns (c, kh, kw): the order W.reshape(F, -1) uses
    cols = windows(x, kh, kw, stride, pad).transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
    out = cols @ W.reshape(f, -1).T + b
    return out.reshape(n, oh, ow, f).transpose(0, 3, 1, 2), ConvCache(cols, x.shape, stride, pad)


def conv_backward(dout: np.ndarray, cache: ConvCache, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dW, db) for ``conv_forward``."""
    n, c, _, _ = cache.x_shape
    f, _, kh, kw = W.shape
    _, _, oh, ow = dout.shape
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, f)
    dW = (dout_rows.T @ cache.cols).reshape(W.shape)
    db = dout_rows.sum(axis=0)
    dcols = (dout_rows @ W.reshape(f, -1)).reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)
    return scatter_windows(dcols, cache.x_shape, cache.stride, cache.pad), dW, db


class PoolCache(NamedTuple):
    x_shape: tuple[int, ...]
    size: int
    stride: int
    argmax: np.ndarray | None  # max pooling: flat index of the winner inside each window


def max_pool_forward(x: np.ndarray, size: int = 2, stride: int | None = None) -> tuple[np.ndarray, PoolCache]:
    stride = stride or size
    win = windows(x, size, size, stride, 0)
    flat = win.reshape(*win.shape[:4], size * size)
    argmax = flat.argmax(axis=-1)
    out = np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
    return out, PoolCache(x.shape, size, stride, argmax)


def max_pool_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Only each window's maximum passed forward, so only it receives the window's gradient."""
    k = cache.size
    dflat = np.zeros((*dout.shape, k * k), dtype=dout.dtype)
    np.put_along_axis(dflat, cache.argmax[..., None], dout[..., None], axis=-1)
    return scatter_windows(dflat.reshape(*dout.shape, k, k), cache.x_shape, cache.stride, 0)


def avg_pool_forward(x: np.ndarray, size: int = 2, stride: int | None = None) -> tuple[np.ndarray, PoolCache]:
    stride = stride or size
    return windows(x, size, size, stride, 0).mean(axis=(-2, -1)), PoolCache(x.shape, size, stride, None)


def avg_pool_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Every input of a window contributed 1/(size^2) of its mean."""
    k = cache.size
    dwin = np.broadcast_to((dout / (k * k))[..., None, None], (*dout.shape, k, k))
    return scatter_windows(dwin, cache.x_shape, cache.stride, 0)


POOLS = {"max": (max_pool_forward, max_pool_backward), "avg": (avg_pool_forward, avg_pool_backward)}
