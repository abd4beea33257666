"""Training and decoding for sequence-to-sequence models: padded batches, teacher forcing, greedy translation.

``components.training.loop.fit`` assumes one label per example; a translation has one per target token, so this
loop is its own, reusing that module's optimizer, LR schedule and device choice. The model is any
``model(src, tgt_in) -> logits (B, T, V)`` with ``greedy_decode(src, bos_id, eos_id, max_len)``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from components.data.vocab import Vocab
from components.training.loop import TrainConfig, make_optimizer, make_scheduler


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
        out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def encode_pairs(sources: list[str], targets: list[str], src_vocab: Vocab, tgt_vocab: Vocab) -> EncodedPairs:
    return EncodedPairs(pad_ids([src_vocab.encode(s) for s in sources], src_vocab.pad_id),
                        pad_ids([tgt_vocab.encode(t, bos=True) for t in targets], tgt_vocab.pad_id))


def batches(data: EncodedPairs, batch_size: int, generator: torch.Generator | None = None):
    """(src, tgt) batches, shuffled when a generator is given, trimmed to their longest row."""
    order = torch.randperm(len(data), generator=generator) if generator is not None else torch.arange(len(data))
    for start in range(0, len(data), batch_size):
        idx = order[start:start + batch_size]
        src, tgt = data.src[idx], data.tgt[idx]
        pad = Vocab.pad_id  # padding only ever trails, so the longest row's real tokens end the batch
        yield src[:, :int((src != pad).sum(1).max())], tgt[:, :int((tgt != pad).sum(1).max())]


def sequence_loss(logits, target, pad_id: int, label_smoothing: float = 0.0):
    """Mean cross-entropy over the non-padding target tokens."""
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), ignore_index=pad_id,
                           label_smoothing=label_smoothing)


@torch.no_grad()
def teacher_forced_metrics(model: nn.Module, data: EncodedPairs, device: torch.device, pad_id: int,
                           batch_size: int = 256) -> dict[str, float]:
    """Loss per target token and next-token accuracy when the decoder is fed the true previous tokens."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for src, tgt in batches(data, batch_size):
        src, tgt = src.to(device), tgt.to(device)
        logits = model(src, tgt[:, :-1]).float()
        real = tgt[:, 1:] != pad_id
        loss_sum += F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=pad_id,
                                    reduction="sum").item()
        correct += ((logits.argmax(-1) == tgt[:, 1:]) & real).sum().item()
        count += real.sum().item()
    return {"loss": loss_sum / max(count, 1), "token_accuracy": correct / max(count, 1)}


@torch.no_grad()
def translate(model: nn.Module, sources: list[str], src_vocab: Vocab, tgt_vocab: Vocab, max_len: int,
              device: torch.device, batch_size: int = 256) -> list[str]:
    """Greedy translations of ``sources`` as text."""
    model.eval().to(device)
    out = []
    for start in range(0, len(sources), batch_size):
        src = pad_ids([src_vocab.encode(s) for s in sources[start:start + batch_size]], src_vocab.pad_id)
        ids = model.greedy_decode(src.to(device), tgt_vocab.bos_id, tgt_vocab.eos_id, max_len)
        out += [tgt_vocab.decode(row) for row in ids.tolist()]
    return out


def exact_match(predictions: list[str], references: list[str], vocab: Vocab) -> float:
    """Share of predictions whose tokens equal the reference's tokens (case and spacing as the tokenizer sees)."""
    hits = [vocab.normalize(p) == vocab.normalize(r) for p, r in zip(predictions, references, strict=True)]
    return sum(hits) / max(len(hits), 1)


def fit_seq2seq(model: nn.Module, train: EncodedPairs, val: EncodedPairs, config: TrainConfig, device: torch.device,
                *, pad_id: int, label_smoothing: float = 0.0, seed: int = 0,
                val_exact_match: Callable[[nn.Module], float] | None = None,
                on_epoch: Callable[[dict], None] | None = None) -> tuple[list[dict], int]:
    """Teacher-forced training with AdamW, the configured LR schedule, clipping and bf16 autocast on CUDA.
    Keeps the weights of the epoch with the lowest validation loss; stops after ``patience`` epochs without
    one. Returns the per-epoch history and the best epoch."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    optimizer = make_optimizer(model, config, device)
    scheduler = make_scheduler(optimizer, config, math.ceil(len(train) / config.batch_size))
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp and device.type == "cuda")
    history, best_loss, best_epoch, best_state = [], math.inf, 0, None
    for epoch in range(1, config.epochs + 1):
        started, loss_sum, steps = time.perf_counter(), torch.zeros((), device=device), 0
        model.train()
        for src, tgt in batches(train, config.batch_size, generator):
            src, tgt = src.to(device, non_blocking=True), tgt.to(device, non_blocking=True)
            with amp:
                loss = sequence_loss(model(src, tgt[:, :-1]), tgt[:, 1:], pad_id, label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach()
            steps += 1
        with amp:
            val_metrics = teacher_forced_metrics(model, val, device, pad_id)
        row = {"epoch": epoch, "train_loss": loss_sum.item() / max(steps, 1), "val_loss": val_metrics["loss"],
               "val_token_accuracy": val_metrics["token_accuracy"]}
        if val_exact_match is not None:
            row["val_exact_match"] = val_exact_match(model)
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
