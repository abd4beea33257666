"""A character-level language model in NumPy (the "dinosaur names" model): a recurrent cell reads one-hot
characters and a dense layer predicts the next one.

A name is read as ``\\n n a m e`` and must predict ``n a m e \\n``: one boundary token both starts and ends it
(index 0). Names of a batch are padded at the end with target -1, which the loss ignores; padding comes
after a name's last real step, so it never changes a real step's output. Training clips the global gradient
norm (recurrent nets' gradients can explode); sampling draws one character at a time at a temperature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from components.errors import TrainingDiverged
from components.scratch.activations import softmax
from components.scratch.optim import decayed_lr, make_optimizer
from components.scratch.rnn import get_cell, sequence_backward, sequence_forward

BOUNDARY = "\n"


class Vocabulary:
    def __init__(self, chars):
        self.chars = [BOUNDARY, *sorted(set(chars) - {BOUNDARY})]
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    @classmethod
    def from_names(cls, names: Sequence[str]) -> Vocabulary:
        return cls("".join(names))

    def encode(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets (T, N) for a batch of names; T is the longest name + 1, targets padded with -1."""
        unknown = sorted({c for n in names for c in n} - set(self.index))
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown}")
        T = max(len(n) for n in names) + 1
        targets = np.full((T, len(names)), -1, dtype=np.int64)
        for j, name in enumerate(names):
            targets[: len(name) + 1, j] = [self.index[c] for c in name] + [0]
        inputs = np.zeros_like(targets)
        inputs[1:] = np.maximum(targets[:-1], 0)
        return inputs, targets


def clip_by_global_norm(grads: dict[str, np.ndarray], max_norm: float | None) -> float:
    """Scale all gradients down together so their joint L2 norm is at most ``max_norm``; returns the norm
    before clipping. Scaling keeps the update's direction, unlike clipping each value to a range."""
    norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))
    if max_norm is not None and norm > max_norm:
        for g in grads.values():
            g *= max_norm / norm
    return norm


def sequence_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray, int]:
    """Mean -log p(target) over the positions whose target is not -1; (loss, d loss / d logits, count)."""
    mask = targets >= 0
    count = int(mask.sum())
    p = softmax(logits.reshape(-1, logits.shape[-1])).reshape(logits.shape)
    safe = np.where(mask, targets, 0)
    picked = np.take_along_axis(p, safe[..., None], axis=-1)[..., 0]
    loss = float(-np.sum(np.log(picked[mask])) / count)
    grad = p.copy()
    np.put_along_axis(grad, safe[..., None], np.take_along_axis(grad, safe[..., None], axis=-1) - 1, axis=-1)
    return loss, grad * (mask[..., None] / count), count


class CharRNN:
    """The network: one-hot characters -> cell -> logits ``h Wy + by``."""

    def __init__(self, vocab_size: int, hidden_size: int, cell: str = "lstm", seed: int = 0, dtype=np.float64):
        self.cell, self.vocab_size, self.hidden_size = get_cell(cell), vocab_size, hidden_size
        rng = np.random.default_rng(seed)
        self.params = {f"cell.{k}": v for k, v in self.cell.init(vocab_size, hidden_size, rng, dtype).items()}
        s = 1.0 / np.sqrt(hidden_size)
        self.params["Wy"] = rng.uniform(-s, s, (hidden_size, vocab_size)).astype(dtype)
        self.params["by"] = np.zeros(vocab_size, dtype=dtype)

    @property
    def cell_params(self) -> dict[str, np.ndarray]:
        return {k[5:]: v for k, v in self.params.items() if k.startswith("cell.")}

    def parameter_count(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def one_hot(self, tokens: np.ndarray) -> np.ndarray:
        return np.eye(self.vocab_size, dtype=self.params["Wy"].dtype)[tokens]

    def forward(self, inputs: np.ndarray, state=None):
        """Logits (T, N, V) for token ids (T, N), the final state and the caches for ``backward``."""
        n = inputs.shape[1]
        state = state or self.cell.initial_state(n, self.hidden_size, self.params["Wy"].dtype)
        hs, state, caches = sequence_forward(self.cell, self.one_hot(inputs), state, self.cell_params)
        return hs @ self.params["Wy"] + self.params["by"], state, (hs, caches)

    def loss_and_grads(self, inputs: np.ndarray, targets: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        logits, _, (hs, caches) = self.forward(inputs)
        loss, dlogits, _ = sequence_cross_entropy(logits, targets)
        grads = {"Wy": np.einsum("tnh,tnv->hv", hs, dlogits), "by": dlogits.sum(axis=(0, 1))}
        _, _, cell_grads = sequence_backward(self.cell, dlogits @ self.params["Wy"].T, caches, self.cell_params)
        grads.update({f"cell.{k}": g for k, g in cell_grads.items()})
        return loss, grads

    def sample(
        self, n: int, rng: np.random.Generator, temperature: float = 1.0, max_len: int = 30, prefix: Sequence[int] = ()
    ) -> list[list[int]]:
        """``n`` token sequences drawn one character at a time (all ``n`` in parallel), each continuing
        ``prefix`` until it draws the boundary token or reaches ``max_len`` characters. Temperature below 1
        sharpens the distribution, above 1 flattens it; 0 means always the most likely character."""
        dtype = self.params["Wy"].dtype
        state = self.cell.initial_state(n, self.hidden_size, dtype)
        token = np.zeros(n, dtype=np.int64)
        for c in prefix:  # read the prefix, keep its state
            state, _ = self.cell.forward(self.one_hot(token), state, self.cell_params)
            token = np.full(n, c, dtype=np.int64)
        drawn, alive = [], np.ones(n, dtype=bool)
        for _ in range(len(prefix), max_len):
            state, _ = self.cell.forward(self.one_hot(token), state, self.cell_params)
            logits = state[0] @ self.params["Wy"] + self.params["by"]
            if temperature == 0:
                token = logits.argmax(axis=1)
            else:  # inverse CDF: the first class whose cumulative probability exceeds a uniform draw
                p = softmax(logits / temperature)
                token = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(0, self.vocab_size - 1)
            drawn.append(token)
            alive &= token != 0
            if not alive.any():
                break
        seqs = np.stack(drawn, axis=1) if drawn else np.zeros((n, 0), dtype=np.int64)
        ends = np.where((seqs == 0).any(axis=1), (seqs == 0).argmax(axis=1), seqs.shape[1])
        return [list(prefix) + seqs[j, : ends[j]].tolist() for j in range(n)]


class CharLanguageModel:
    """Fit a CharRNN on a list of names with Adam (or any optimiser in ``optim.py``) and gradient clipping;
    score names (mean nats per character, the boundary included) and sample new ones."""

    def __init__(
        self,
        cell: str = "lstm",
        hidden_size: int = 64,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 10,
        batch_size: int = 32,
        grad_clip: float | None = 5.0,
        decay: str = "none",
        decay_rate: float = 0.0,
        max_len: int = 30,
        dtype: str = "float32",
        seed: int = 0,
        alphabet: str = "",
    ):
        self.cell, self.hidden_size, self.optimizer, self.lr, self.epochs = cell, hidden_size, optimizer, lr, epochs
        self.batch_size, self.grad_clip, self.decay, self.decay_rate = batch_size, grad_clip, decay, decay_rate
        self.max_len, self.dtype, self.seed = max_len, dtype, seed
        self.alphabet = alphabet  # characters the model can predict beyond those it is fitted on ("": those only)

    def fit(
        self,
        names: Sequence[str],
        val_names: Sequence[str] | None = None,
        on_epoch: Callable[[dict], None] | None = None,
    ) -> CharLanguageModel:
        """Train; each epoch records lr, train loss, the share of steps whose gradient was clipped, the
        validation loss (given val_names) and one sampled name, in ``history_``."""
        names = list(names)
        self.vocab_ = Vocabulary.from_names([*names, *(val_names or []), self.alphabet])
        rng = np.random.default_rng(self.seed)
        self.net_ = CharRNN(len(self.vocab_), self.hidden_size, self.cell, self.seed, np.dtype(self.dtype))
        opt = make_optimizer(self.optimizer)
        self.history_, best = [], (np.inf, None, None)
        for epoch in range(1, self.epochs + 1):
            lr = decayed_lr(self.lr, epoch - 1, self.decay, self.decay_rate)
            order = rng.permutation(len(names))
            total, chars, clipped, steps = 0.0, 0, 0, 0
            for start in range(0, len(names), self.batch_size):
                inputs, targets = self.vocab_.encode([names[i] for i in order[start : start + self.batch_size]])
                loss, grads = self.net_.loss_and_grads(inputs, targets)
                norm = clip_by_global_norm(grads, self.grad_clip)
                clipped += self.grad_clip is not None and norm > self.grad_clip
                steps += 1
                opt.step(self.net_.params, grads, lr)
                n = int((targets >= 0).sum())
                total, chars = total + loss * n, chars + n
            row = {"epoch": epoch, "lr": lr, "train_loss": total / chars, "clipped_share": clipped / steps}
            TrainingDiverged.check(epoch, row["train_loss"])
            if val_names:
                row["val_loss"] = self.loss(val_names)
                if row["val_loss"] < best[0]:
                    best = (row["val_loss"], epoch, {k: v.copy() for k, v in self.net_.params.items()})
            row["sample"] = self.sample(1, temperature=1.0, seed=self.seed + epoch)[0]
            self.history_.append(row)
            if on_epoch is not None:
                on_epoch(dict(row))
        self.best_epoch_ = best[1] or self.epochs
        if best[2] is not None:
            self.net_.params = best[2]
        return self

    def _check_chars(self, names: Sequence[str]) -> None:
        unknown = sorted({c for n in names for c in n} - set(self.vocab_.index))
        if unknown:
            raise ValueError(f"characters the model never saw: {unknown}; known: {''.join(self.vocab_.chars[1:])}")

    def loss(self, names: Sequence[str], batch: int = 512) -> float:
        """Mean negative log-likelihood per character (nats), over every character and each name's end."""
        self._check_chars(names)
        total, count = 0.0, 0
        for start in range(0, len(names), batch):
            inputs, targets = self.vocab_.encode(list(names[start : start + batch]))
            loss, _, n = sequence_cross_entropy(self.net_.forward(inputs)[0], targets)
            total, count = total + loss * n, count + n
        return total / count

    def name_losses(self, names: Sequence[str]) -> np.ndarray:
        """Mean nats per character of each name on its own (one batch; names are short)."""
        self._check_chars(names)
        inputs, targets = self.vocab_.encode(list(names))
        logits = self.net_.forward(inputs)[0]
        logp = logits - logits.max(-1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
        mask = targets >= 0
        picked = np.take_along_axis(logp, np.where(mask, targets, 0)[..., None], axis=-1)[..., 0]
        return -(picked * mask).sum(axis=0) / mask.sum(axis=0)

    def sample(self, n: int, temperature: float = 1.0, seed: int = 0, prefix: str = "") -> list[str]:
        self._check_chars([prefix])
        rng = np.random.default_rng(seed)
        tokens = self.net_.sample(n, rng, temperature, self.max_len, [self.vocab_.index[c] for c in prefix])
        return ["".join(self.vocab_.chars[t] for t in seq) for seq in tokens]


def unigram_loss(train: Sequence[str], test: Sequence[str], smoothing: float = 1.0) -> float:
    """Nats per character of a model that ignores context: p(c) = how often c (or the end) occurs in training."""
    vocab = Vocabulary.from_names(list(train) + list(test))
    counts = np.full(len(vocab), smoothing)
    for name in train:
        for c in name + BOUNDARY:
            counts[vocab.index[c]] += 1
    logp = np.log(counts / counts.sum())
    test_tokens = [vocab.index[c] for name in test for c in name + BOUNDARY]
    return float(-np.mean(logp[test_tokens]))


def bigram_loss(train: Sequence[str], test: Sequence[str], smoothing: float = 0.1) -> float:
    """Nats per character of a model that sees only the previous character (add-``smoothing`` counts)."""
    vocab = Vocabulary.from_names(list(train) + list(test))
    counts = np.full((len(vocab), len(vocab)), smoothing)
    for name in train:
        seq = [0] + [vocab.index[c] for c in name] + [0]
        np.add.at(counts, (seq[:-1], seq[1:]), 1)
    logp = np.log(counts / counts.sum(axis=1, keepdims=True))
    pairs = np.array(
        [
            (a, b)
            for name in test
            for a, b in zip([0] + [vocab.index[c] for c in name], [vocab.index[c] for c in name] + [0])
        ]
    )
    return float(-np.mean(logp[pairs[:, 0], pairs[:, 1]]))
