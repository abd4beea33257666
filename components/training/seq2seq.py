"""Sequence-to-sequence pieces around the one training loop: padded batches, the teacher-forced loss and
metrics, greedy translation and exact match (``components.training.tasks.Seq2SeqTask`` trains with them
through ``components.training.loop.fit``). The model is any ``model(src, tgt_in) -> logits (B, T, V)`` with
``greedy_decode(src, bos_id, eos_id, max_len)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from components.data.vocab import Vocab


@dataclass
class EncodedPairs:
    """Sources (N, S) and targets (N, T+1) as padded id tensors; a target is <bos> ... <eos>."""

    src: torch.Tensor
    tgt: torch.Tensor

    def __len__(self) -> int:
        return len(self.src)


def pad_ids(rows: list[list[int]], pad_id: int) -> torch.Tensor:
    out = torch.full((len(rows), max(map(len, rows))), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def encode_pairs(sources: list[str], targets: list[str], src_vocab: Vocab, tgt_vocab: Vocab) -> EncodedPairs:
    return EncodedPairs(
        pad_ids([src_vocab.encode(s) for s in sources], src_vocab.pad_id),
        pad_ids([tgt_vocab.encode(t, bos=True) for t in targets], tgt_vocab.pad_id),
    )


def batches(data: EncodedPairs, batch_size: int, generator: torch.Generator | None = None, trim: bool = True):
    """(src, tgt) batches, shuffled when a generator is given, trimmed to their longest row (``trim=False``: as
    wide as the longest row of all, so every batch has one shape; the masks make the extra padding inert)."""
    order = torch.randperm(len(data), generator=generator) if generator is not None else torch.arange(len(data))
    for start in range(0, len(data), batch_size):
        idx = order[start : start + batch_size]
        src, tgt = data.src[idx], data.tgt[idx]
        if not trim:
            yield src, tgt
            continue
        pad = Vocab.pad_id  # padding only ever trails, so the longest row's real tokens end the batch
        yield src[:, : int((src != pad).sum(1).max())], tgt[:, : int((tgt != pad).sum(1).max())]


def sequence_loss(logits, target, pad_id: int, label_smoothing: float = 0.0):
    """Mean cross-entropy over the non-padding target tokens."""
    return F.cross_entropy(
        logits.flatten(0, 1).float(), target.flatten(), ignore_index=pad_id, label_smoothing=label_smoothing
    )


@torch.no_grad()
def teacher_forced_metrics(
    model: nn.Module, data: EncodedPairs, device: torch.device, pad_id: int, batch_size: int = 256
) -> dict[str, float]:
    """Loss per target token and next-token accuracy when the decoder is fed the true previous tokens."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for src, tgt in batches(data, batch_size):
        src, tgt = src.to(device), tgt.to(device)
        logits = model(src, tgt[:, :-1]).float()
        real = tgt[:, 1:] != pad_id
        loss_sum += F.cross_entropy(
            logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=pad_id, reduction="sum"
        ).item()
        correct += ((logits.argmax(-1) == tgt[:, 1:]) & real).sum().item()
        count += real.sum().item()
    return {"loss": loss_sum / max(count, 1), "token_accuracy": correct / max(count, 1)}


@torch.no_grad()
def translate(
    model: nn.Module,
    sources: list[str],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    max_len: int,
    device: torch.device,
    batch_size: int = 256,
) -> list[str]:
    """Greedy translations of ``sources`` as text."""
    model.eval().to(device)
    out = []
    for start in range(0, len(sources), batch_size):
        src = pad_ids([src_vocab.encode(s) for s in sources[start : start + batch_size]], src_vocab.pad_id)
        ids = model.greedy_decode(src.to(device), tgt_vocab.bos_id, tgt_vocab.eos_id, max_len)
        out += [tgt_vocab.decode(row) for row in ids.tolist()]
    return out


def exact_match(predictions: list[str], references: list[str], vocab: Vocab) -> float:
    """Share of predictions whose tokens equal the reference's tokens (case and spacing as the tokenizer sees)."""
    hits = [vocab.normalize(p) == vocab.normalize(r) for p, r in zip(predictions, references, strict=True)]
    return sum(hits) / max(len(hits), 1)
