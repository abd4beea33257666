"""Next-token language models over id sequences (each ``<bos> ... <eos>``): training windows, batches and
scoring around the one training loop (``components.training.tasks.TokenLMTask`` trains through
``components.training.loop.fit``). The model is any ``model(ids) -> (logits (B, T, V), state)``. Long sequences
train as windows (truncated backpropagation) and are scored whole. The count-based baselines (unigram,
bigram) are scored on the same targets.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from components.training.seq2seq import pad_ids


def windows(seqs: list[list[int]], length: int) -> list[list[int]]:
    """Each sequence cut into windows of at most ``length`` targets (``length + 1`` ids; consecutive windows
    share one id, so every target is predicted exactly once)."""
    return [s[i : i + length + 1] for s in seqs for i in range(0, max(1, len(s) - 1), length)]


def batches(rows: list[list[int]], batch_size: int, pad_id: int, generator: torch.Generator | None = None):
    order = torch.randperm(len(rows), generator=generator).tolist() if generator is not None else range(len(rows))
    for start in range(0, len(rows), batch_size):
        yield pad_ids([rows[i] for i in order[start : start + batch_size]], pad_id)


@torch.no_grad()
def sequence_nll(
    model: nn.Module, seqs: list[list[int]], device: torch.device, pad_id: int, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Summed negative log-likelihood (nats) of each whole sequence's targets (every id after the first), and
    its number of targets. Padding only trails, so a batch scores each row as if it were alone."""
    model.eval().to(device)
    nll, counts = [], []
    for ids in batches(seqs, batch_size, pad_id):
        ids = ids.to(device)
        logits, _ = model(ids[:, :-1])
        losses = F.cross_entropy(logits.float().transpose(1, 2), ids[:, 1:], ignore_index=pad_id, reduction="none")
        nll += losses.sum(1).tolist()
        counts += (ids[:, 1:] != pad_id).sum(1).tolist()
    return np.array(nll), np.array(counts)


def mean_loss(model: nn.Module, seqs: list[list[int]], device: torch.device, pad_id: int) -> float:
    nll, counts = sequence_nll(model, seqs, device, pad_id)
    return float(nll.sum() / max(counts.sum(), 1))


# --- count-based baselines -----------------------------------------------------------------------------------


def unigram_loss(train: list[list[int]], test: list[list[int]], vocab_size: int, k: float = 0.5) -> float:
    """Nats per target of add-``k`` token frequencies (no context at all)."""
    counts = np.full(vocab_size, k)
    for s in train:
        np.add.at(counts, s[1:], 1)
    logp = np.log(counts / counts.sum())
    targets = np.concatenate([s[1:] for s in test])
    return float(-logp[targets].mean())


def bigram_loss(train: list[list[int]], test: list[list[int]], vocab_size: int, k: float) -> float:
    """Nats per target of add-``k`` counts of each token given the one before it."""
    counts = np.full((vocab_size, vocab_size), k)
    for s in train:
        np.add.at(counts, (s[:-1], s[1:]), 1)
    logp = np.log(counts / counts.sum(1, keepdims=True))
    prev = np.concatenate([s[:-1] for s in test])
    nxt = np.concatenate([s[1:] for s in test])
    return float(-logp[prev, nxt].mean())


def tuned_bigram_loss(train, val, test, vocab_size: int, ks=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0)) -> tuple[float, float]:
    """The bigram baseline at its best smoothing on the validation split: (test loss, k)."""
    k = min(ks, key=lambda k: bigram_loss(train, val, vocab_size, k))
    return bigram_loss(train, test, vocab_size, k), k
