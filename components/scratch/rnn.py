"""Recurrent cells in NumPy (vanilla RNN, GRU, LSTM), forward and backward, and backpropagation through time.

Rows are samples: a step maps x (N, D) and the state to a new state; ``state[0]`` is the hidden output h
(N, H). The LSTM's state is (h, c); the others' is (h,). Gate weights are stacked: ``Wx`` (D, G*H),
``Wh`` (H, G*H), ``b`` (G*H,) with G = 1 (RNN), 3 (GRU: update z, reset r, candidate n) or 4 (LSTM: input i,
forget f, output o, candidate g). Time is the only Python loop; every step is vectorised over the batch.

    RNN:  h = tanh(x Wx + h' Wh + b)
    GRU:  z = s(x Wz + h' Uz + bz); r = s(x Wr + h' Ur + br); n = tanh(x Wn + (r * h') Un + bn)
          h = (1 - z) * n + z * h'
    LSTM: i, f, o = s(.), g = tanh(.) of x Wx + h' Wh + b; c = f * c' + i * g; h = o * tanh(c)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from components.scratch.activations import sigmoid

Params = dict[str, np.ndarray]
State = tuple[np.ndarray, ...]


class Cell:
    name: str
    gates: int
    state_size: int = 1  # arrays in the state tuple

    def init(self, input_size: int, hidden_size: int, rng: np.random.Generator, dtype=np.float64) -> Params:
        """Uniform(-1/sqrt(H), 1/sqrt(H)) as in the classic RNN papers (and torch.nn.RNN)."""
        s = 1.0 / np.sqrt(hidden_size)
        g = self.gates * hidden_size
        return {
            "Wx": rng.uniform(-s, s, (input_size, g)).astype(dtype),
            "Wh": rng.uniform(-s, s, (hidden_size, g)).astype(dtype),
            "b": np.zeros(g, dtype=dtype),
        }

    def initial_state(self, n: int, hidden_size: int, dtype=np.float64) -> State:
        return tuple(np.zeros((n, hidden_size), dtype=dtype) for _ in range(self.state_size))

    def forward(self, x: np.ndarray, state: State, p: Params) -> tuple[State, Any]:
        raise NotImplementedError

    def backward(self, dstate: State, cache: Any, p: Params, grads: Params) -> tuple[np.ndarray, State]:
        """Gradient for x and the previous state, given the gradient for the new state; adds the parameter
        gradients into ``grads`` (they accumulate over time steps)."""
        raise NotImplementedError


class RNNCell(Cell):
    name, gates = "rnn", 1

    def forward(self, x, state, p):
        (h_prev,) = state
        h = np.tanh(x @ p["Wx"] + h_prev @ p["Wh"] + p["b"])
        return (h,), (x, h_prev, h)

    def backward(self, dstate, cache, p, grads):
        x, h_prev, h = cache
        dz = dstate[0] * (1 - h * h)
        grads["Wx"] += x.T @ dz
        grads["Wh"] += h_prev.T @ dz
        grads["b"] += dz.sum(axis=0)
        return dz @ p["Wx"].T, (dz @ p["Wh"].T,)


class GRUCell(Cell):
    name, gates = "gru", 3

    def forward(self, x, state, p):
        (h_prev,) = state
        H = h_prev.shape[1]
        gx = x @ p["Wx"] + p["b"]
        gh = h_prev @ p["Wh"][:, : 2 * H]  # the candidate's share of Wh sees r * h', not h'
        z = sigmoid(gx[:, :H] + gh[:, :H])
        r = sigmoid(gx[:, H : 2 * H] + gh[:, H:])
        rh = r * h_prev
        n = np.tanh(gx[:, 2 * H :] + rh @ p["Wh"][:, 2 * H :])
        h = (1 - z) * n + z * h_prev
        return (h,), (x, h_prev, z, r, rh, n)

    def backward(self, dstate, cache, p, grads):
        x, h_prev, z, r, rh, n = cache
        H = h_prev.shape[1]
        dh = dstate[0]
        dn = dh * (1 - z) * (1 - n * n)  # through tanh
        dz = dh * (h_prev - n) * z * (1 - z)  # through sigmoid
        drh = dn @ p["Wh"][:, 2 * H :].T
        dr = drh * h_prev * r * (1 - r)
        dgx = np.concatenate([dz, dr, dn], axis=1)
        dgh = np.concatenate([dz, dr], axis=1)
        grads["Wx"] += x.T @ dgx
        grads["b"] += dgx.sum(axis=0)
        grads["Wh"][:, : 2 * H] += h_prev.T @ dgh
        grads["Wh"][:, 2 * H :] += rh.T @ dn
        dh_prev = dh * z + drh * r + dgh @ p["Wh"][:, : 2 * H].T
        return dgx @ p["Wx"].T, (dh_prev,)


class LSTMCell(Cell):
    name, gates, state_size = "lstm", 4, 2

    def init(self, input_size, hidden_size, rng, dtype=np.float64):
        p = super().init(input_size, hidden_size, rng, dtype)
        # forget-gate bias 1: remember by default early in training (Jozefowicz et al., 2015)
        p["b"][hidden_size : 2 * hidden_size] = 1.0
        return p

    def forward(self, x, state, p):
        h_prev, c_prev = state
        H = h_prev.shape[1]
        a = x @ p["Wx"] + h_prev @ p["Wh"] + p["b"]
        i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H]), sigmoid(a[:, 2 * H : 3 * H])
        g = np.tanh(a[:, 3 * H :])
        c = f * c_prev + i * g
        tc = np.tanh(c)
        h = o * tc
        return (h, c), (x, h_prev, c_prev, i, f, o, g, tc)

    def backward(self, dstate, cache, p, grads):
        x, h_prev, c_prev, i, f, o, g, tc = cache
        dh, dc = dstate
        dc = dc + dh * o * (1 - tc * tc)
        da = np.concatenate(
            [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dh * tc * o * (1 - o), dc * i * (1 - g * g)], axis=1
        )
        grads["Wx"] += x.T @ da
        grads["Wh"] += h_prev.T @ da
        grads["b"] += da.sum(axis=0)
        return da @ p["Wx"].T, (da @ p["Wh"].T, dc * f)


CELLS: dict[str, Cell] = {c.name: c for c in (RNNCell(), GRUCell(), LSTMCell())}


def get_cell(name: str) -> Cell:
    try:
        return CELLS[name]
    except KeyError:
        raise ValueError(f"unknown cell {name!r}; known: {', '.join(CELLS)}") from None


def sequence_forward(cell: Cell, xs: np.ndarray, state: State, p: Params) -> tuple[np.ndarray, State, list]:
    """Run ``cell`` over xs (T, N, D) from ``state``: hidden outputs (T, N, H), the final state, the caches."""
    hs, caches = [], []
    for x in xs:
        state, cache = cell.forward(x, state, p)
        hs.append(state[0])
        caches.append(cache)
    return np.stack(hs), state, caches


def sequence_backward(
    cell: Cell, dhs: np.ndarray, caches: list, p: Params, dstate_last: State | None = None
) -> tuple[np.ndarray, State, Params]:
    """Backpropagation through time: given d loss / d h_t for every step (T, N, H) (and optionally for the final
    state), return d loss / d xs, d loss / d initial state, and the parameter gradients."""
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dstate = dstate_last or tuple(np.zeros_like(dhs[0]) for _ in range(cell.state_size))
    dxs = [None] * len(caches)
    for t in range(len(caches) - 1, -1, -1):
        dstate = (dstate[0] + dhs[t], *dstate[1:])
        dxs[t], dstate = cell.backward(dstate, caches[t], p, grads)
    return np.stack(dxs), dstate, grads
