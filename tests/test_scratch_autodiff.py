"""The autodiff engine: gradients of random graphs equal finite differences (float64, relative error < 1e-7),
each operation is right on its own, and an MLP trained with it learns real digits."""

import numpy as np
import pytest

from components.scratch.autodiff import Tensor, cross_entropy, logsumexp, unbroadcast
from components.scratch.autodiff_nn import MLP, AutodiffMLPClassifier
from components.scratch.dense import DenseNet
from components.scratch.gradcheck import numerical_gradient, relative_error
from components.scratch.losses import softmax_cross_entropy

pytestmark = pytest.mark.unit

TOL = 1e-7

# Smooth operations only, with their domains kept valid: a random graph of them is differentiable everywhere.
UNARY = {
    "tanh": lambda t: t.tanh(),
    "sigmoid": lambda t: t.sigmoid(),
    "exp": lambda t: (t * 0.3).exp(),
    "log": lambda t: (t * t + 1.0).log(),
    "square": lambda t: t**2,
    "sqrt": lambda t: (t * t + 0.5) ** 0.5,
    "neg": lambda t: -t,
    "T": lambda t: t.T.T,
    "sum_keep": lambda t: t.sum(axis=-1, keepdims=True) * 0.2 + t,
    "mean_rows": lambda t: t - t.mean(axis=0),
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1.0),
    "rsub": lambda a, b: 2.0 - a * b,
}


def random_graph(seed: int):
    """Leaves of shapes that broadcast against (4, 3), combined by random unary/binary ops and a matmul,
    reduced to a scalar. Returns (leaves, a function building the loss from them)."""
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (1, 3), (3,), (4, 1), (4, 3)]
    leaves = [Tensor(rng.normal(size=shapes[i % len(shapes)])) for i in range(rng.integers(3, 6))]
    plan = [
        (rng.choice(list(UNARY)), rng.choice(list(BINARY)), int(rng.integers(len(leaves))))
        for _ in range(int(rng.integers(4, 9)))
    ]
    W = Tensor(rng.normal(size=(3, 2)))
    leaves.append(W)

    def build() -> Tensor:
        nodes = [leaf for leaf in leaves[:-1]]
        x = nodes[0] + 0.0 * nodes[1]  # broadcast to (4, 3) at the start
        for unary, binary, pick in plan:
            x = BINARY[binary](UNARY[unary](x), nodes[pick])
            # rescale to RMS ~1 (itself a differentiable node): no saturated tanh, no exploding squares, so no
            # gradient so small that finite differences drown in rounding
            x = x * ((x * x).mean() + 1.0) ** -0.5
            nodes.append(x)  # later steps may reuse intermediate nodes: a DAG, not a chain
        return ((x @ W).tanh() + nodes[len(nodes) // 2].sum() * 0.1).sum()

    return leaves, build


@pytest.mark.parametrize("seed", range(25))
def test_random_graph_gradients_equal_finite_differences(seed):
    leaves, build = random_graph(seed)
    build().backward()
    numeric = [numerical_gradient(lambda: build().data.item(), leaf.data) for leaf in leaves]
    # As in a classic gradient check, the relative error is over all parameters at once (a leaf whose gradient
    # is near zero would otherwise divide rounding noise by almost nothing) ...
    analytic_all = np.concatenate([leaf.grad.ravel() for leaf in leaves])
    assert relative_error(analytic_all, np.concatenate([n.ravel() for n in numeric])) < TOL, seed
    # ... and every leaf must still agree entry by entry
    for leaf, n in zip(leaves, numeric):
        assert np.allclose(leaf.grad, n, rtol=1e-5, atol=1e-8), (seed, leaf.shape)


@pytest.mark.parametrize("op", ["relu", "matmul", "sum_axis0", "mean_all", "reshape", "pow3", "rtruediv"])
def test_each_operation_alone(op):
    rng = np.random.default_rng(1)
    a = Tensor(rng.normal(size=(3, 4)) + np.sign(rng.normal(size=(3, 4))) * 0.2)
    b = Tensor(rng.normal(size=(4, 2)))
    weights = rng.normal(size=(12,))
    fn = {
        "relu": lambda: a.relu().reshape(12),
        "matmul": lambda: (a @ b).reshape(6) * 1.0,
        "sum_axis0": lambda: a.sum(axis=0).sum(axis=0, keepdims=True) * a.reshape(12),
        "mean_all": lambda: a.mean() * a.reshape(12),
        "reshape": lambda: a.reshape(4, 3).T.reshape(12),
        "pow3": lambda: (a**3).reshape(12),
        "rtruediv": lambda: (1.0 / (a * a + 1.0)).reshape(12),
    }[op]

    def loss():
        out = fn()
        return (out * Tensor(weights[: out.shape[0]])).sum()

    loss().backward()
    for t in (a, b) if op == "matmul" else (a,):
        assert relative_error(t.grad, numerical_gradient(lambda: loss().data.item(), t.data)) < TOL


def test_a_tensor_used_twice_accumulates_both_paths():
    x = Tensor(np.array([3.0]))
    (x * x + x).sum().backward()
    assert x.grad == pytest.approx([7.0])


def test_unbroadcast_sums_back_to_the_operand_shape():
    g = np.ones((5, 4, 3))
    assert unbroadcast(g, (4, 1)).shape == (4, 1) and unbroadcast(g, (4, 1))[0, 0] == 15
    assert unbroadcast(g, (3,)).shape == (3,)


def test_cross_entropy_matches_the_fused_numpy_loss_and_is_stable():
    rng = np.random.default_rng(2)
    logits, labels = rng.normal(size=(6, 4)) * 50, rng.integers(0, 4, 6)  # large logits: exp would overflow
    t = Tensor(logits.copy())
    loss = cross_entropy(t, labels)
    loss.backward()
    value, grad = softmax_cross_entropy(logits, labels)
    assert loss.data.item() == pytest.approx(value) and np.allclose(t.grad, grad)
    assert np.allclose(logsumexp(Tensor(np.array([[1000.0, 1000.0]]))).data, 1000 + np.log(2))


def test_backward_needs_a_scalar_and_deep_graphs_do_not_recurse():
    with pytest.raises(ValueError, match="scalar"):
        Tensor(np.ones(3)).tanh().backward()
    x = Tensor(np.array(0.5))
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**5000)


def test_autodiff_mlp_gradients_equal_the_hand_written_backward_pass():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(9, 5)), rng.integers(0, 3, 9)
    mlp = MLP((5, 7, 3), activation="tanh", seed=0)
    cross_entropy(mlp(Tensor(X)), y).backward()
    net = DenseNet((5, 7, 3), "tanh", "softmax", "zeros")
    for i, layer in enumerate(mlp.layers, start=1):
        net.params[f"W{i}"], net.params[f"b{i}"] = layer.W.data.copy(), layer.b.data.copy()
    _, grads = net.loss_and_grads(X, y)
    for i, layer in enumerate(mlp.layers, start=1):
        assert np.allclose(layer.W.grad, grads[f"W{i}"]) and np.allclose(layer.b.grad, grads[f"b{i}"])


def test_mlp_trained_by_the_engine_learns_real_digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = np.round(X * 255 / 16).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:1200], order[1200:]
    clf = AutodiffMLPClassifier(hidden=(32,), epochs=6, lr=3e-3).fit(X[train], y[train])
    assert (clf.predict(X[test]) == y[test]).mean() > 0.85  # chance: 0.1
    assert clf.history_[-1]["train_loss"] < clf.history_[0]["train_loss"] / 2
