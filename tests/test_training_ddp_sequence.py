"""DistributedDataParallel for the sequence tasks on the CPU: 2 gloo processes train the token language model
(``TokenLMTask``) and the seq2seq Transformer (``Seq2SeqTask``) along the 1-process trajectory on the same global
batch, end with the same weights on both ranks and as one process, write checkpoints from rank 0 only, and resume
on 2 processes where a 1-process run stopped.

What makes them differ from classification: a batch is drawn from the loop's generator, padded and split by rows,
so the ranks' shards hold different numbers of real tokens, and each task's loss is a mean over its tokens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from components.settings import TrainSettings
from components.training import distributed
from components.training.loop import fit
from components.training.tasks import Seq2SeqTask, TokenLMTask
from tests.test_trainer_parity import setup_seq2seq, setup_token_lm
from tests.test_training_ddp import Stop, free_port, stop_after_first_epoch

pytestmark = pytest.mark.integration  # two processes over gloo: too slow for the fast tier

TASKS = ("token_lm", "seq2seq")


def setup(name: str):
    """The parity test's tiny cases, without dropout (its masks would differ between 1 and N ranks)."""
    if name == "token_lm":
        model, train, val, kwargs, settings = setup_token_lm()  # its LSTM has no dropout
        return model, TokenLMTask(**kwargs), train, val, settings
    from components.models.transformer import Transformer

    _, train, val, kwargs, settings = setup_seq2seq()
    torch.manual_seed(0)
    model = Transformer(12, 12, d_model=16, heads=2, encoder_layers=1, decoder_layers=1, d_ff=32, dropout=0.0)
    return model, Seq2SeqTask(**kwargs), train, val, settings


def run(name: str, device, **fit_kwargs):
    model, task, train, val, settings = setup(name)
    result = fit(model, task, train, val, TrainSettings(**settings), device, progress=False, **fit_kwargs)
    return [(e["train_loss"], e["val_loss"]) for e in result.history], model.state_dict()


def _worker(rank: int, world: int, port: int, out_dir: str):
    """Both tasks in one process group (spawning processes is the slow part), each trained and then resumed."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    ctx = distributed.init_from_env("cpu")  # the same call a torchrun-launched program makes
    out = Path(out_dir)
    try:
        runs = {}
        for name in TASKS:
            history, weights = run(name, ctx.device, checkpoint_dir=out / f"ckpt-{name}")
            resumed, _ = run(name, ctx.device, checkpoint_dir=out / f"ckpt-resume-{name}", resume=True)
            runs[name] = {"history": history, "resumed": resumed, "weights": weights}
        torch.save(runs, out / f"rank-{rank}.pt")
    finally:
        distributed.cleanup()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """1-process references (and a 1-process run stopped after epoch 1), then both ranks of one 2-process run."""
    tmp = tmp_path_factory.mktemp("ddp-sequence")
    reference = {name: run(name, torch.device("cpu")) for name in TASKS}
    for name in TASKS:
        with pytest.raises(Stop):
            run(name, torch.device("cpu"), checkpoint_dir=tmp / f"ckpt-resume-{name}", on_epoch=stop_after_first_epoch)
    mp.spawn(_worker, args=(2, free_port(), str(tmp)), nprocs=2, join=True)
    return tmp, reference, [torch.load(tmp / f"rank-{r}.pt") for r in range(2)]


def assert_same_trajectory(reference, other):
    assert len(other) == len(reference)
    for (loss1, val1), (loss2, val2) in zip(reference, other):
        assert loss2 == pytest.approx(loss1, rel=1e-4)
        assert val2 == pytest.approx(val1, rel=1e-4)


@pytest.mark.parametrize("name", TASKS)
def test_two_processes_follow_the_one_process_trajectory(runs, name):
    tmp, reference, ranks = runs
    (history, weights), (rank0, rank1) = reference[name], (ranks[0][name], ranks[1][name])
    assert rank0["history"] == rank1["history"]  # both ranks report the same all-reduced history
    assert history[-1][0] < 0.95 * history[0][0]  # it learns, so the comparison means something
    assert_same_trajectory(history, rank0["history"])
    for key, tensor in rank0["weights"].items():
        assert torch.equal(tensor, rank1["weights"][key]), key  # DDP keeps the ranks' weights identical
        # Adam divides each step by the gradient's running scale, so float rounding on a near-zero gradient
        # moves a weight by up to a fraction of lr (0.01): measured 1.3e-4 on a Transformer bias.
        torch.testing.assert_close(tensor, weights[key], rtol=1e-3, atol=1e-3)
    assert sorted(p.name for p in (tmp / f"ckpt-{name}").iterdir()) == ["best.pt", "last.pt"]
    assert torch.load(tmp / f"ckpt-{name}" / "last.pt", weights_only=False)["epoch"] == 4


@pytest.mark.parametrize("name", TASKS)
def test_two_processes_resume_where_a_one_process_run_stopped(runs, name):
    _, reference, ranks = runs
    rank0, rank1 = ranks[0][name], ranks[1][name]
    assert rank0["resumed"] == rank1["resumed"]
    assert_same_trajectory(reference[name][0], rank0["resumed"])
