"""DistributedDataParallel for a sequence task on the CPU: 2 gloo processes train the token language model
(``TokenLMTask``: windows of variable length, padded, each global batch drawn from the loop's generator and
split by rows, so the ranks' shards hold different numbers of real tokens) along the 1-process trajectory on
the same global batch, end with the same weights on both ranks and as one process, write checkpoints from rank 0
only, and resume on 2 processes where a 1-process run stopped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from components.settings import TrainSettings
from components.training import distributed
from components.training.loop import fit
from components.training.tasks import TokenLMTask
from tests.test_trainer_parity import setup_token_lm
from tests.test_training_ddp import Stop, free_port, stop_after_first_epoch

pytestmark = pytest.mark.unit


def run(device, **fit_kwargs):
    """The parity test's token LM (an LSTM without dropout: its masks would differ between 1 and N ranks)."""
    model, train, val, kwargs, settings = setup_token_lm()
    result = fit(
        model, TokenLMTask(**kwargs), train, val, TrainSettings(**settings), device, progress=False, **fit_kwargs
    )
    return [(e["train_loss"], e["val_loss"]) for e in result.history], model.state_dict()


def _worker(rank: int, world: int, port: int, out_dir: str):
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    ctx = distributed.init_from_env("cpu")  # the same call a torchrun-launched program makes
    out = Path(out_dir)
    try:
        history, weights = run(ctx.device, checkpoint_dir=out / "ckpt")
        resumed, _ = run(ctx.device, checkpoint_dir=out / "ckpt-resume", resume=True)
        torch.save({"history": history, "resumed": resumed, "weights": weights}, out / f"rank-{rank}.pt")
    finally:
        distributed.cleanup()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The 1-process reference, and what both ranks of one 2-process run report."""
    tmp = tmp_path_factory.mktemp("ddp-token-lm")
    reference, reference_weights = run(torch.device("cpu"))
    with pytest.raises(Stop):
        run(torch.device("cpu"), checkpoint_dir=tmp / "ckpt-resume", on_epoch=stop_after_first_epoch)
    mp.spawn(_worker, args=(2, free_port(), str(tmp)), nprocs=2, join=True)
    return tmp, reference, reference_weights, [torch.load(tmp / f"rank-{r}.pt") for r in range(2)]


def assert_same_trajectory(reference, other):
    assert len(other) == len(reference)
    for (loss1, val1), (loss2, val2) in zip(reference, other):
        assert loss2 == pytest.approx(loss1, rel=1e-4)
        assert val2 == pytest.approx(val1, rel=1e-4)


def test_two_processes_follow_the_one_process_token_lm_trajectory(runs):
    tmp, reference, reference_weights, (rank0, rank1) = runs
    assert rank0["history"] == rank1["history"]  # both ranks report the same all-reduced history
    assert reference[-1][0] < 0.8 * reference[0][0]  # it learns, so the comparison means something
    assert_same_trajectory(reference, rank0["history"])
    for name, tensor in rank0["weights"].items():
        assert torch.equal(tensor, rank1["weights"][name]), name  # DDP keeps the ranks' weights identical
        torch.testing.assert_close(tensor, reference_weights[name], rtol=1e-4, atol=1e-5)
    assert sorted(p.name for p in (tmp / "ckpt").iterdir()) == ["best.pt", "last.pt"]
    assert torch.load(tmp / "ckpt" / "last.pt", weights_only=False)["epoch"] == 4


def test_two_processes_resume_a_token_lm_run_where_it_stopped(runs):
    _, reference, _, (rank0, rank1) = runs
    assert rank0["resumed"] == rank1["resumed"]
    assert_same_trajectory(reference, rank0["resumed"])
