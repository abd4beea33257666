"""train.cuda_graphs: a step's forward and backward replayed from CUDA graphs trains the same net as eager steps.

On the CPU the switch changes nothing; sequence batches padded to one width (what a graph needs) give the loss of
batches trimmed to their longest row; on CUDA a graphed run (a graph for the full batches, one for the smaller
last batch) has the eager run's losses while the two are close and learns as it does, and a step that cannot be
captured trains eagerly with a warning, leaving the process's random generator and stream as they were.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from components.data.vocab import Vocab
from components.models.transformer import Transformer
from components.settings import TrainSettings
from components.training.augment import ArrayDataset
from components.training.loop import fit
from components.training.seq2seq import batches, encode_pairs, sequence_loss
from components.training.tasks import ClassificationTask, Seq2SeqTask
from tests.test_training import blobs, tiny_cnn

pytestmark = pytest.mark.unit
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


DIGITS = Vocab.build(["0123456789"], "char")


def copy_pairs(n: int, seed: int = 0):
    """Digit strings of 2-9 characters and their copies: rows of many widths, learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    texts = ["".join(map(str, rng.integers(0, 10, rng.integers(2, 10)))) for _ in range(n)]
    return encode_pairs(texts, texts, DIGITS, DIGITS), DIGITS


def small_transformer(vocab: Vocab, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(
        len(vocab), len(vocab), d_model=32, heads=4, encoder_layers=1, decoder_layers=1, d_ff=64, dropout=0.0
    )


def test_batches_padded_to_one_width_give_the_trimmed_batches_loss():
    data, vocab = copy_pairs(64)
    model = small_transformer(vocab).eval()
    trimmed = list(batches(data, 4, torch.Generator().manual_seed(0)))
    padded = list(batches(data, 4, torch.Generator().manual_seed(0), trim=False))
    assert {tuple(s.shape) for s, _ in padded} == {(4, data.src.shape[1])}
    assert min(s.shape[1] for s, _ in trimmed) < data.src.shape[1]  # some batches were trimmed
    with torch.no_grad():
        for (s, t), (ps, pt) in zip(trimmed, padded, strict=True):
            a = sequence_loss(model(s, t[:, :-1]), t[:, 1:], vocab.pad_id)
            b = sequence_loss(model(ps, pt[:, :-1]), pt[:, 1:], vocab.pad_id)
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_cpu_training_ignores_the_switch():
    x, y = blobs(32)

    def run(graphs):
        torch.manual_seed(0)
        data = ArrayDataset(x, y)
        config = TrainSettings(epochs=2, batch_size=16, lr=0.02, patience=100, cuda_graphs=graphs)
        return fit(tiny_cnn(), ClassificationTask(), data, data, config, torch.device("cpu"), progress=False).history

    assert [r["train_loss"] for r in run(True)] == [r["train_loss"] for r in run(False)]


def _seq2seq_run(graphs: bool, task=None):
    train, vocab = copy_pairs(1000)  # batch 32: 31 full batches and one of 8, so two graphs
    val, _ = copy_pairs(64, seed=1)
    model = small_transformer(vocab)
    config = TrainSettings(epochs=20, batch_size=32, lr=0.01, patience=100, amp=False, cuda_graphs=graphs)
    task = task or Seq2SeqTask(vocab.pad_id)
    result = fit(model, task, train, val, config, torch.device("cuda"), seed=0, progress=False)
    return result.history


def assert_same_training(graphed, eager):
    # Padding and TF32 reorder float sums only: the same losses to float noise while the two runs are close (a
    # graph that replayed stale inputs, gradients or LRs would be far off within an epoch); both learn to copy
    # (on the CPU: loss 2.70 -> 0.15, next-token accuracy 0.94 on unseen strings; chance about 1/11).
    losses = [[r["train_loss"] for r in run] for run in (graphed, eager)]
    np.testing.assert_allclose(losses[0][:3], losses[1][:3], rtol=1e-2)
    for run in (graphed, eager):
        assert run[-1]["train_loss"] < 0.1 * run[0]["train_loss"]
        assert run[-1]["val_token_accuracy"] > 0.85


@needs_cuda
def test_graphed_steps_train_the_eager_runs_net_on_cuda(caplog):
    with caplog.at_level(logging.WARNING, logger="dlfolio"):
        graphed = _seq2seq_run(True)
    assert not any("CUDA graphs off" in r.message for r in caplog.records)  # the graphs were used, not the fallback
    assert_same_training(graphed, _seq2seq_run(False))


class _SyncingTask(Seq2SeqTask):
    """A loss that reads a value on the host each step: not capturable."""

    def loss(self, model, batch):
        loss, weight = super().loss(model, batch)
        if loss.item() < 0:  # a host synchronisation inside the step
            raise AssertionError
        return loss, weight


@needs_cuda
def test_a_step_that_cannot_be_captured_trains_eagerly_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="dlfolio"):
        graphed = _seq2seq_run(True, task=_SyncingTask(Vocab.pad_id))
    assert any("CUDA graphs off" in r.message for r in caplog.records)
    assert_same_training(graphed, _seq2seq_run(False, task=_SyncingTask(Vocab.pad_id)))
    # the failed capture left the process as it was: random draws and the default stream work as before
    assert torch.cuda.current_stream() == torch.cuda.default_stream()
    assert torch.rand(4, device="cuda").unique().numel() == 4
