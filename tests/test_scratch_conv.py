"""The NumPy convolutional network: every layer's backward pass equals central differences in float64
(relative error below 1e-7), forward passes equal torch's, and the whole network's gradient checks out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from components.scratch.cnn import ConvBlock, ConvClassifier, ConvNet, as_images
from components.scratch.conv import (
    avg_pool_backward,
    avg_pool_forward,
    conv_backward,
    conv_forward,
    max_pool_backward,
    max_pool_forward,
)
from components.scratch.gradcheck import numerical_gradient, relative_error

pytestmark = pytest.mark.unit

TOL = 1e-7


def check(analytic: np.ndarray, f, x: np.ndarray) -> float:
    error = relative_error(analytic, numerical_gradient(f, x))
    assert error < TOL, f"relative error {error:.2e}"
    return error


@pytest.mark.parametrize(
    "stride,pad,kernel", [(1, 0, (3, 3)), (1, 1, (3, 3)), (2, 1, (3, 2)), (2, 2, (5, 5)), (3, 0, (2, 2))]
)
def test_conv_forward_equals_torch_and_backward_equals_finite_differences(stride, pad, kernel):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    W = rng.standard_normal((4, 3, *kernel))
    b = rng.standard_normal(4)
    out, cache = conv_forward(x, W, b, stride, pad)
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(W), torch.from_numpy(b), stride=stride, padding=pad)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-12)

    weights = rng.standard_normal(out.shape)  # loss = sum(out * weights), so d loss / d out = weights
    dx, dW, db = conv_backward(weights, cache, W)
    loss = lambda: float(np.sum(conv_forward(x, W, b, stride, pad)[0] * weights))  # noqa: E731
    for analytic, param in ((dx, x), (dW, W), (db, b)):
        check(analytic, loss, param)


@pytest.mark.parametrize("size,stride", [(2, 2), (3, 1), (3, 2)])  # stride < size: overlapping windows
def test_max_pool_matches_torch_and_routes_gradient_to_each_window_maximum(size, stride):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 7))  # continuous values: no ties, so the max is differentiable
    out, cache = max_pool_forward(x, size, stride)
    np.testing.assert_allclose(out, F.max_pool2d(torch.from_numpy(x), size, stride).numpy())
    weights = rng.standard_normal(out.shape)
    check(max_pool_backward(weights, cache), lambda: float(np.sum(max_pool_forward(x, size, stride)[0] * weights)), x)


@pytest.mark.parametrize("size,stride", [(2, 2), (3, 1), (3, 2)])
def test_average_pool_matches_torch_and_spreads_gradient_evenly(size, stride):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 7))
    out, cache = avg_pool_forward(x, size, stride)
    np.testing.assert_allclose(out, F.avg_pool2d(torch.from_numpy(x), size, stride).numpy(), atol=1e-12)
    weights = rng.standard_normal(out.shape)
    check(avg_pool_backward(weights, cache), lambda: float(np.sum(avg_pool_forward(x, size, stride)[0] * weights)), x)


def test_whole_network_gradient_conv_relu_pools_dense_softmax_cross_entropy_l2_and_l1():
    rng = np.random.default_rng(3)
    blocks = [
        ConvBlock(3, kernel=3, padding=1, pool="max"),
        ConvBlock(4, kernel=2, stride=1, padding=0, pool="avg"),
        ConvBlock(2, kernel=1, padding=0, pool="none"),
    ]
    net = ConvNet((2, 8, 8), blocks, hidden=(5,), n_classes=3, seed=0, dtype=np.float64)
    for p in net.params.values():  # nonzero biases, so ReLU kinks sit away from zero inputs
        p += 0.1 * rng.standard_normal(p.shape)
    X, y = rng.standard_normal((4, 2, 8, 8)), np.array([0, 2, 1, 2])
    _, grads = net.loss_and_grads(X, y, l2=0.3, l1=0.2)
    assert set(grads) == set(net.params)
    for name, param in net.params.items():
        check(grads[name], lambda: net.loss_and_grads(X, y, l2=0.3, l1=0.2)[0], param)


def test_a_batch_gives_the_same_logits_as_its_samples_one_at_a_time():
    net = ConvNet((1, 8, 8), [ConvBlock(4), ConvBlock(6, pool="avg")], (8,), 10, seed=1)
    X = np.random.default_rng(4).standard_normal((5, 1, 8, 8))
    batch = net.forward(X)[0]
    single = np.concatenate([net.forward(X[i : i + 1])[0] for i in range(len(X))])
    np.testing.assert_allclose(batch, single, atol=1e-12)


def test_images_become_grayscale_nchw_in_unit_range():
    images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    images[0, ..., 0] = 255  # pure red: gray = 1/3
    x = as_images(images, np.float32)
    assert x.shape == (2, 1, 8, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], 1 / 3, rtol=1e-6)
    assert as_images(images, np.float32, grayscale=False).shape == (2, 3, 8, 8)


def test_classifier_learns_digits_far_above_chance():
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = np.round(digits.images * 255 / 16).astype(np.uint8), digits.target.astype(str)
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:1000], order[1000:1400]
    model = ConvClassifier(
        blocks=[{"filters": 8}, {"filters": 16, "pool": "avg"}], hidden=(32,), epochs=8, lr=5e-3, seed=0
    ).fit(X[train], y[train])
    proba = model.predict_proba(X[test])
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-9)
    accuracy = np.mean(model.predict(X[test]) == y[test])
    assert accuracy > 0.9, accuracy  # chance is 0.1
    assert model.history_[-1]["train_loss"] < model.history_[0]["train_loss"] / 2
