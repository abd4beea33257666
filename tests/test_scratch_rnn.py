"""The NumPy recurrent cells and the character-level language model: backward passes equal central differences
in float64 (relative error below 1e-7) for one step and through time, and sampling, clipping and the
baselines do what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.scratch.charlm import (
    CharLanguageModel,
    CharRNN,
    Vocabulary,
    bigram_loss,
    clip_by_global_norm,
    sequence_cross_entropy,
    unigram_loss,
)
from components.scratch.gradcheck import numerical_gradient, relative_error
from components.scratch.rnn import CELLS, get_cell, sequence_backward, sequence_forward

pytestmark = pytest.mark.unit

TOL = 1e-7
N, D, H = 3, 4, 5


def check(analytic, f, x) -> None:
    # step 1e-5: the recurrent weights' gradients are small (~1e-3), and with a 1e-6 step the round-off in
    # f (~1e-16 / step) alone reaches a relative 1e-7; truncation error stays ~step^2
    error = relative_error(analytic, numerical_gradient(f, x, eps=1e-5))
    assert error < TOL, f"relative error {error:.2e}"


def setup_cell(name: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    cell = get_cell(name)
    p = cell.init(D, H, rng)
    p["b"] += 0.1 * rng.standard_normal(p["b"].shape)
    state = tuple(rng.standard_normal((N, H)) for _ in range(cell.state_size))
    return cell, p, state, rng


@pytest.mark.parametrize("name", list(CELLS))
def test_one_step_backward_equals_finite_differences(name):
    cell, p, state, rng = setup_cell(name)
    x = rng.standard_normal((N, D))
    weights = [rng.standard_normal((N, H)) for _ in state]  # loss = sum of each new state array * weights
    loss = lambda: float(sum(np.sum(s * w) for s, w in zip(cell.forward(x, state, p)[0], weights)))  # noqa: E731
    _, cache = cell.forward(x, state, p)
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dx, dstate = cell.backward(tuple(weights), cache, p, grads)
    check(dx, loss, x)
    for d, s in zip(dstate, state):
        check(d, loss, s)
    for k in p:
        check(grads[k], loss, p[k])


@pytest.mark.parametrize("name", list(CELLS))
def test_backpropagation_through_five_time_steps_equals_finite_differences(name):
    cell, p, state, rng = setup_cell(name, seed=1)
    xs = rng.standard_normal((5, N, D))
    dhs = rng.standard_normal((5, N, H))  # a loss on every step's output ...
    dlast = tuple(rng.standard_normal((N, H)) for _ in state)  # ... and on the final state

    def loss():
        hs, last, _ = sequence_forward(cell, xs, state, p)
        return float(np.sum(hs * dhs) + sum(np.sum(s * w) for s, w in zip(last, dlast)))

    _, _, caches = sequence_forward(cell, xs, state, p)
    dxs, dstate0, grads = sequence_backward(cell, dhs, caches, p, dlast)
    check(dxs, loss, xs)
    for d, s in zip(dstate0, state):
        check(d, loss, s)
    for k in p:
        check(grads[k], loss, p[k])


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_rnn_and_lstm_cells_equal_torchs_given_the_same_weights(name):
    """torch orders the LSTM gates i, f, g, o (ours: i, f, o, g). The GRU is left out: ours is Cho et al.'s
    original, reset gate applied before the recurrent product ((r * h) Un); torch's applies it after
    (r * (h Un)), a different function."""
    cell, p, state, rng = setup_cell(name, seed=2)
    x = rng.standard_normal((N, D))
    ours = cell.forward(x, state, p)[0][0]
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    if name == "rnn":
        expected = torch._VF.rnn_tanh_cell(t(x), t(state[0]), t(p["Wx"].T), t(p["Wh"].T), t(p["b"]), t(np.zeros(H)))
    else:
        order = lambda a: np.concatenate([a[..., : 2 * H], a[..., 3 * H :], a[..., 2 * H : 3 * H]], axis=-1)  # noqa: E731
        expected = torch._VF.lstm_cell(
            t(x),
            (t(state[0]), t(state[1])),
            t(order(p["Wx"]).T),
            t(order(p["Wh"]).T),
            t(order(p["b"])),
            t(np.zeros(4 * H)),
        )[0]
    np.testing.assert_allclose(ours, expected.numpy(), atol=1e-12)


def test_masked_sequence_cross_entropy_gradient_and_padding():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((4, 3, 6))
    targets = np.array([[1, 2, 0], [3, 0, -1], [0, -1, -1], [-1, -1, -1]])
    loss, grad, count = sequence_cross_entropy(logits, targets)
    assert count == 6
    assert np.all(grad[targets < 0] == 0)  # padding neither counts nor pulls
    check(grad, lambda: sequence_cross_entropy(logits, targets)[0], logits)


@pytest.mark.parametrize("name", list(CELLS))
def test_language_model_gradient_end_to_end(name):
    vocab = Vocabulary.from_names(["abc", "cab", "ba"])
    net = CharRNN(len(vocab), 4, name, seed=0, dtype=np.float64)
    rng = np.random.default_rng(4)
    for k in net.params:
        net.params[k] += 0.1 * rng.standard_normal(net.params[k].shape)
    inputs, targets = vocab.encode(["abc", "cab", "b"])
    _, grads = net.loss_and_grads(inputs, targets)
    for k, param in net.params.items():
        check(grads[k], lambda: net.loss_and_grads(inputs, targets)[0], param)


def test_names_are_framed_by_the_boundary_token_and_padded():
    vocab = Vocabulary.from_names(["ab", "b"])
    inputs, targets = vocab.encode(["ab", "b"])
    assert vocab.chars == ["\n", "a", "b"]
    assert targets.T.tolist() == [[1, 2, 0], [2, 0, -1]]
    assert inputs.T.tolist() == [[0, 1, 2], [0, 2, 0]]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode(["abz"])


def test_clipping_scales_the_global_norm_down_and_keeps_the_direction():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0, 4.0]])}
    before = {k: v.copy() for k, v in grads.items()}
    assert clip_by_global_norm(grads, 1.0) == pytest.approx(5.0)
    assert np.sqrt(sum(np.sum(g**2) for g in grads.values())) == pytest.approx(1.0)
    for k in grads:
        np.testing.assert_allclose(grads[k], before[k] / 5)
    small = {"a": np.array([0.3])}
    clip_by_global_norm(small, 1.0)
    assert small["a"][0] == 0.3


def test_baselines_unigram_is_the_character_entropy_and_bigram_uses_context():
    names = ["ab", "ab", "ab"]  # characters a, b, end: each 1/3; given the previous character, certain
    assert unigram_loss(names, names, smoothing=0) == pytest.approx(np.log(3))
    assert bigram_loss(names, names, smoothing=1e-9) == pytest.approx(0, abs=1e-6)


NAMES = [
    "anna",
    "anne",
    "ann",
    "hanna",
    "hannah",
    "joanna",
    "joanne",
    "jo",
    "jon",
    "john",
    "johnny",
    "jonas",
    "mary",
    "maria",
    "marie",
    "mario",
    "marion",
    "mark",
    "marko",
    "martin",
    "martina",
    "nina",
    "nino",
    "tina",
]


@pytest.fixture(scope="module")
def small_model():
    return CharLanguageModel(cell="lstm", hidden_size=16, lr=2e-2, epochs=30, batch_size=8, seed=0).fit(
        NAMES, NAMES[:4]
    )


def test_training_lowers_the_loss_below_the_unigram_baseline(small_model):
    history = small_model.history_
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.5
    assert small_model.loss(NAMES) < unigram_loss(NAMES, NAMES) - 0.5


def test_sampling_temperature_zero_is_greedy_and_low_temperature_is_less_diverse(small_model):
    greedy = small_model.sample(5, temperature=0, seed=1)
    assert len(set(greedy)) == 1  # no randomness left
    assert small_model.sample(20, 1.0, seed=7) == small_model.sample(20, 1.0, seed=7)  # seeded
    cold, hot = small_model.sample(200, 0.3, seed=2), small_model.sample(200, 2.0, seed=2)
    assert len(set(cold)) < len(set(hot))
    assert all(set(s) <= set("".join(NAMES)) and len(s) <= small_model.max_len for s in hot)
    assert all(s.startswith("ma") for s in small_model.sample(10, 1.0, seed=3, prefix="ma"))
