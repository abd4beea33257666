"""The NumPy dense-net pieces: every activation, loss and layer matches finite differences in float64
(relative error below 1e-7), the optimisers and schedules do what their formulas say, and the nets learn."""

import numpy as np
import pytest

from components.scratch.activations import ACTIVATIONS, sigmoid, softmax
from components.scratch.dense import DenseClassifier, DenseNet
from components.scratch.gradcheck import numerical_gradient, relative_error, sampled_numerical_gradient
from components.scratch.layers import dense_backward, dense_forward, dropout_mask, init_weights
from components.scratch.linear import LinearNeuron, mse_gradients
from components.scratch.logistic import LogisticRegressionNet, propagate
from components.scratch.losses import binary_cross_entropy_with_logits, mse, softmax_cross_entropy
from components.scratch.optim import OPTIMIZERS, Adam, decayed_lr, make_optimizer

pytestmark = pytest.mark.unit

TOL = 1e-7


def away_from_zero(rng, shape):
    """ReLU's kink at 0 is not differentiable: keep inputs at least 0.1 away from it."""
    x = rng.normal(size=shape)
    return x + np.sign(x) * 0.1


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_backward_matches_finite_differences(name):
    rng = np.random.default_rng(0)
    act = ACTIVATIONS[name]
    z, weights = away_from_zero(rng, (6, 5)), rng.normal(size=(6, 5))
    loss = lambda: float(np.sum(act.forward(z) * weights))  # noqa: E731
    analytic = act.backward(weights, z, act.forward(z))
    assert relative_error(analytic, numerical_gradient(loss, z)) < TOL


def test_sigmoid_and_softmax_are_stable_at_extremes():
    z = np.array([[-1000.0, 0.0, 1000.0]])
    with np.errstate(over="raise"):
        assert np.allclose(sigmoid(z), [[0.0, 0.5, 1.0]])
        assert np.allclose(softmax(z), [[0.0, 0.0, 1.0]])


@pytest.mark.parametrize("loss_name", ["mse", "bce", "softmax_ce"])
def test_loss_gradient_matches_finite_differences(loss_name):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(8, 3)) * 3
    loss_fn, target = {
        "mse": (mse, rng.normal(size=(8, 3))),
        "bce": (binary_cross_entropy_with_logits, rng.integers(0, 2, size=(8, 3))),
        "softmax_ce": (softmax_cross_entropy, rng.integers(0, 3, size=8)),
    }[loss_name]
    _, analytic = loss_fn(z, target)
    assert relative_error(analytic, numerical_gradient(lambda: loss_fn(z, target)[0], z)) < TOL


def test_softmax_cross_entropy_value_is_minus_log_probability_of_the_label():
    logits = np.array([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]])
    value, _ = softmax_cross_entropy(logits, np.array([0, 2]))
    expected = -np.mean(np.log([softmax(logits)[0, 0], 1 / 3]))
    assert value == pytest.approx(expected)


def test_dense_layer_backward_matches_finite_differences():
    rng = np.random.default_rng(2)
    x, W, b, weights = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(5, 3))
    loss = lambda: float(np.sum(dense_forward(x, W, b)[0] * weights))  # noqa: E731
    dx, dW, db = dense_backward(weights, x, W)
    for analytic, param in ((dx, x), (dW, W), (db, b)):
        assert relative_error(analytic, numerical_gradient(loss, param)) < TOL


def test_inverted_dropout_keeps_the_expected_activation():
    mask = dropout_mask((2000, 50), 0.8, np.random.default_rng(0))
    assert set(np.unique(mask)) == {0.0, 1.25}
    assert mask.mean() == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "linear"])
def test_whole_network_gradients_with_l2_and_dropout(activation, output):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(7, 5))
    y = {"softmax": rng.integers(0, 3, 7), "sigmoid": rng.integers(0, 2, (7, 3)), "linear": rng.normal(size=(7, 3))}[
        output
    ]
    net = DenseNet((5, 6, 4, 3), activation, output, "xavier", seed=1)
    # Non-zero biases: with zero biases a sample whose inputs to a layer are all dropped sits exactly on ReLU's
    # kink (z = 0), where finite differences see only a one-sided slope.
    for k in net.params:
        net.params[k] += 0.05 * rng.normal(size=net.params[k].shape)
    loss = lambda: net.loss_and_grads(X, y, l2=0.3, keep_prob=0.7, rng=np.random.default_rng(5))[0]  # noqa: E731
    _, grads = net.loss_and_grads(X, y, l2=0.3, keep_prob=0.7, rng=np.random.default_rng(5))
    for name, param in net.params.items():
        assert relative_error(grads[name], numerical_gradient(loss, param)) < TOL, name


def test_sampled_gradient_check_agrees_with_the_full_one():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 7))
    f = lambda: float(np.sum(np.tanh(x) ** 2))  # noqa: E731
    idx = np.array([0, 5, 17, 41])
    assert np.allclose(sampled_numerical_gradient(f, x, idx), numerical_gradient(f, x).reshape(-1)[idx])


def test_linear_neuron_and_logistic_gradients_match_finite_differences():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=20), rng.normal(size=20)
    w, b = np.array(0.3), np.array(-0.2)
    _, dw, db = mse_gradients(float(w), float(b), x, y)
    f = lambda: mse_gradients(float(w), float(b), x, y)[0]  # noqa: E731
    assert relative_error(np.array([dw, db]), np.array([numerical_gradient(f, w), numerical_gradient(f, b)])) < TOL

    X, labels, wv, bv = rng.normal(size=(30, 4)), rng.integers(0, 2, 30), rng.normal(size=4), np.array(0.1)
    _, dwv, dbv = propagate(wv, float(bv), X, labels)
    g = lambda: propagate(wv, float(bv), X, labels)[0]  # noqa: E731
    assert relative_error(dwv, numerical_gradient(g, wv)) < TOL
    assert relative_error(np.array(dbv), numerical_gradient(g, bv)) < TOL


@pytest.mark.parametrize("method,std", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(2 / 600)), ("random", 0.01)])
def test_initialisations_have_their_documented_scale(method, std):
    W = init_weights(400, 200, method, np.random.default_rng(0))
    assert W.std() == pytest.approx(std, rel=0.03)


def test_zero_initialisation_never_breaks_symmetry():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 5)), rng.integers(0, 3, 64)
    clf = DenseClassifier(
        hidden=(8,), init="zeros", activation="tanh", optimizer="sgd", lr=0.5, epochs=5, dtype="float64"
    ).fit(X, y)
    W1 = clf.net_.params["W1"]
    assert np.allclose(W1, W1[:, :1])  # every hidden unit is still the same unit


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_minimises_a_quadratic(name):
    target = np.array([3.0, -2.0])
    params = {"w": np.zeros(2)}
    opt = make_optimizer(name)
    lr = {"gd": 0.1, "sgd": 0.1, "momentum": 0.1, "rmsprop": 0.05, "adam": 0.1}[name]
    for _ in range(500):
        opt.step(params, {"w": 2 * (params["w"] - target)}, lr)
    assert np.allclose(params["w"], target, atol=0.05)


def test_adam_first_step_is_lr_in_the_gradient_direction():
    params = {"w": np.zeros(3)}
    Adam().step(params, {"w": np.array([5.0, -0.01, 2.0])}, 0.1)  # bias correction: m/v are not shrunk to ~0
    assert np.allclose(params["w"], [-0.1, 0.1, -0.1], atol=1e-6)


def test_learning_rate_decay_schedules():
    assert decayed_lr(0.1, 4, "none") == 0.1
    assert decayed_lr(0.1, 4, "inverse_time", rate=0.5) == pytest.approx(0.1 / 3)
    assert decayed_lr(0.1, 2, "exponential", rate=0.5) == pytest.approx(0.1 * np.exp(-1))
    assert [decayed_lr(1.0, e, "step", rate=1.0, interval=2) for e in range(5)] == [
        1,
        1,
        0.5,
        0.5,
        pytest.approx(1 / 3),
    ]
    with pytest.raises(ValueError, match="unknown learning-rate decay"):
        decayed_lr(0.1, 1, "cosine")


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = np.round(X * 255 / 16).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(X))
    return X[order[:1300]], y[order[:1300]], X[order[1300:]], y[order[1300:]]


@pytest.mark.parametrize("optimizer,lr,batch", [("adam", 3e-3, 32), ("momentum", 0.1, 32), ("gd", 0.5, None)])
def test_dense_classifier_learns_digits(digits, optimizer, lr, batch):
    X, y, X_te, y_te = digits
    clf = DenseClassifier(
        hidden=(64,),
        optimizer=optimizer,
        lr=lr,
        batch_size=batch,
        epochs=15 if batch else 150,
        keep_prob=0.9,
        l2=0.1,
        decay="inverse_time",
        decay_rate=0.05,
    ).fit(X, y, X_te, y_te)
    accuracy = (clf.predict(X_te) == y_te).mean()
    assert accuracy > 0.85  # ten classes: chance is 0.1
    assert clf.history_[-1]["train_loss"] < clf.history_[0]["train_loss"]
    assert clf.predict_proba(X_te[:5]).sum(1) == pytest.approx(np.ones(5))


def test_classifier_is_seeded_and_clonable(digits):
    from sklearn.base import clone

    X, y, X_te, _ = digits
    a = DenseClassifier(hidden=(16,), epochs=2, seed=7).fit(X[:300], y[:300])
    b = clone(a).fit(X[:300], y[:300])
    assert np.array_equal(a.predict_proba(X_te), b.predict_proba(X_te))
    assert b.get_params()["seed"] == 7


def test_linear_neuron_recovers_the_conversion_and_calibrates_with_mapie():
    from mapie.regression import SplitConformalRegressor

    rng = np.random.default_rng(0)
    c = rng.uniform(-40, 60, 600)
    f = 1.8 * c + 32 + rng.normal(0, 1.5, 600)
    model = LinearNeuron().fit(c[:200, None], f[:200])
    assert model.coef_[0] == pytest.approx(1.8, abs=0.01) and model.intercept_ == pytest.approx(32, abs=0.5)
    conformal = SplitConformalRegressor(model, confidence_level=0.9, prefit=True).conformalize(
        c[200:400, None], f[200:400]
    )
    _, intervals = conformal.predict_interval(c[400:, None])
    covered = (intervals[:, 0, 0] <= f[400:]) & (f[400:] <= intervals[:, 1, 0])
    assert 0.82 <= covered.mean() <= 0.97


def test_linear_neuron_rejects_several_features():
    with pytest.raises(ValueError, match="one feature"):
        LinearNeuron().fit(np.ones((5, 2)), np.ones(5))


def test_logistic_regression_cost_decreases_and_separates():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(-1, 1, (100, 10)), rng.normal(1, 1, (100, 10))]
    y = np.r_[np.zeros(100, int), np.ones(100, int)]
    model = LogisticRegressionNet(lr=0.1, iterations=300, record_every=50).fit(X, y)
    costs = [c["cost"] for c in model.costs_]
    assert costs == sorted(costs, reverse=True)
    assert (model.predict(X) == y).mean() > 0.95


def test_the_numpy_trainers_stop_with_the_epoch_where_the_loss_diverged():
    """Today they train on in NaN and a later metric says "Input contains NaN"."""
    import warnings

    from components.errors import TrainingDiverged

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the overflow that makes the NaN
        with pytest.raises(TrainingDiverged, match=r"^training diverged at epoch \d+ \(loss (nan|inf)\)"):
            LinearNeuron(lr=100.0, epochs=300).fit(x[:, 0], 3 * x[:, 0] + 1)
        with pytest.raises(TrainingDiverged, match=r"^training diverged at epoch \d+ \(loss (nan|inf)\)"):
            DenseClassifier(hidden=(8,), optimizer="sgd", lr=1.0, epochs=5, batch_size=8).fit(x * 1e155, y)  # unscaled
        with pytest.raises(TrainingDiverged, match=r"^training diverged at iteration 2 \(loss nan\)"):
            LogisticRegressionNet(lr=1e308, iterations=50).fit(x * 1e300, y)


@pytest.mark.parametrize("output", ["softmax", "linear"])
def test_whole_network_gradients_with_l1_and_l2(output):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(7, 5))
    y = rng.integers(0, 3, 7) if output == "softmax" else rng.normal(size=(7, 3))
    net = DenseNet((5, 6, 3), "tanh", output, "xavier", seed=2)
    for k in net.params:  # away from W = 0, where |W| has a kink finite differences cannot see
        net.params[k] += 0.05 * rng.normal(size=net.params[k].shape)
    loss = lambda: net.loss_and_grads(X, y, l2=0.2, l1=0.4)[0]  # noqa: E731
    _, grads = net.loss_and_grads(X, y, l2=0.2, l1=0.4)
    plain, plain_grads = net.loss_and_grads(X, y)
    weights = sum(np.abs(net.params[k]).sum() for k in net.params if k.startswith("W"))
    squares = sum((net.params[k] ** 2).sum() for k in net.params if k.startswith("W"))
    assert loss() == pytest.approx(plain + 0.4 / 7 * weights + 0.2 / 14 * squares)
    for name, param in net.params.items():
        assert relative_error(grads[name], numerical_gradient(loss, param)) < TOL, name
    assert np.array_equal(grads["b1"], plain_grads["b1"])  # biases are not penalised


def test_l1_zeroes_more_weights_than_l2_on_features_that_carry_no_signal():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 10))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)  # features 2..9 are noise
    fit = lambda **reg: DenseClassifier((), optimizer="sgd", lr=0.1, epochs=60, batch_size=50, **reg).fit(X, y)  # noqa: E731
    noise_l1 = np.abs(fit(l1=2.0).net_.params["W1"][2:])
    noise_l2 = np.abs(fit(l2=2.0).net_.params["W1"][2:])
    assert np.mean(noise_l1 < 0.01) > 0.8 > np.mean(noise_l2 < 0.01) + 0.3, (noise_l1.round(3), noise_l2.round(3))
    assert np.abs(fit(l1=2.0).net_.params["W1"][:2]).min() > 0.3  # the two informative weights stay
