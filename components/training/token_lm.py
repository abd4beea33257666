"""Training and scoring for next-token language models over id sequences (each ``<bos> ... <eos>``).

``components.training.loop.fit`` assumes one label per example; a language model has one per token, so this loop
is its own, reusing that module's optimizer, LR schedule and device choice. The model is any
``model(ids) -> (logits (B, T, V), state)``. Long sequences train as windows (truncated backpropagation) and
are scored whole. The count-based baselines (unigram, bigram) are scored on the same targets.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from components.training.seq2seq import pad_ids
from components.training.loop import TrainConfig, make_optimizer, make_scheduler


def windows(seqs: list[list[int]], length: int) -> list[list[int]]:
    """Each sequence cut into windows of at most ``length`` targets (``length + 1`` ids; consecutive windows
    share one id, so every target is predicted exactly once)."""
    return [s[i:i + length + 1] for s in seqs for i in range(0, max(1, len(s) - 1), length)]


def batches(rows: list[list[int]], batch_size: int, pad_id: int, generator: torch.Generator | None = None):
    order = torch.randperm(len(rows), generator=generator).tolist() if generator is not None else range(len(rows))
    for start in range(0, len(rows), batch_size):
        yield pad_ids([rows[i] for i in order[start:start + batch_size]], pad_id)


@torch.no_grad()
def sequence_nll(model: nn.Module, seqs: list[list[int]], device: torch.device, pad_id: int,
                 batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
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


def fit_token_lm(model: nn.Module, train: list[list[int]], val: list[list[int]], config: TrainConfig,
                 device: torch.device, *, pad_id: int, window: int, seed: int = 0,
                 on_epoch: Callable[[dict], None] | None = None) -> tuple[list[dict], int]:
    """Teacher-forced training with AdamW, the configured LR schedule and gradient clipping. Keeps the weights
    of the epoch with the lowest validation loss per token; stops after ``patience`` epochs without one.
    Returns the per-epoch history and the best epoch."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    rows = windows(train, window)
    model.to(device)
    optimizer = make_optimizer(model, config, device)
    scheduler = make_scheduler(optimizer, config, math.ceil(len(rows) / config.batch_size))
    history, best_loss, best_epoch, best_state = [], math.inf, 0, None
    for epoch in range(1, config.epochs + 1):
        started, loss_sum, tokens = time.perf_counter(), torch.zeros((), device=device), 0
        model.train()
        for ids in batches(rows, config.batch_size, pad_id, generator):
            ids = ids.to(device, non_blocking=True)
            logits, _ = model(ids[:, :-1])
            loss = F.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten(), ignore_index=pad_id)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            n = int((ids[:, 1:] != pad_id).sum())
            loss_sum += loss.detach() * n
            tokens += n
        row = {"epoch": epoch, "train_loss": loss_sum.item() / max(tokens, 1),
               "val_loss": mean_loss(model, val, device, pad_id)}
        row |= {"lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - started}
        history.append(row)
        if row["val_loss"] < best_loss:
            best_loss, best_epoch, best_state = row["val_loss"], epoch, copy.deepcopy(model.state_dict())
        if on_epoch is not None:
            on_epoch(dict(row))
        if epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history, best_epoch


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
