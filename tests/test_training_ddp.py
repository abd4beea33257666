"""DistributedDataParallel on the CPU: 2 gloo processes follow the 1-process loss trajectory on the same global
batch, write checkpoints from rank 0 only, and resume on 2 processes where they left off."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from components.settings import TrainSettings
from components.training import distributed
from components.training.augment import ArrayDataset, normalize
from components.training.device_data import ImageTensorDataset
from components.training.loop import fit
from components.training.tasks import ClassificationTask

pytestmark = pytest.mark.integration  # two processes over gloo: too slow for the fast tier

CONFIG = TrainSettings(epochs=3, batch_size=16, lr=0.02, patience=100)


def data(n: int = 64):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = rng.integers(0, 100, (n, 6, 6, 1)).astype(np.uint8)
    x[y == 1, :3] += 120
    return x, y


def make_model() -> nn.Module:
    # No BatchNorm or dropout: their per-rank statistics and masks are meant to differ between 1 and N ranks.
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(144, 2))


def datasets(kind: str):
    x, y = data()
    if kind == "batch":
        return ImageTensorDataset(x, y), ImageTensorDataset(x[:20], y[:20])
    return ArrayDataset(x, y, normalize((0.5,), (0.5,))), ArrayDataset(x[:20], y[:20], normalize((0.5,), (0.5,)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str):
    """Three fits in one process group (spawning processes is the slow part): each input path, then a resume."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    ctx = distributed.init_from_env("cpu")  # the same call a torchrun-launched program makes
    out = Path(out_dir)
    try:
        histories = {}
        for kind in ("dataloader", "batch"):
            result = fit(
                make_model(),
                ClassificationTask(),
                *datasets(kind),
                CONFIG,
                ctx.device,
                progress=False,
                checkpoint_dir=out / f"ckpt-{kind}",
            )
            histories[kind] = as_tuples(result)
        # Resume from a checkpoint a 1-process run wrote after epoch 1: switching 1 -> 2 processes mid-run.
        result = fit(
            make_model(),
            ClassificationTask(),
            *datasets("dataloader"),
            CONFIG,
            ctx.device,
            progress=False,
            checkpoint_dir=out / "ckpt-resume",
            resume=True,
        )
        histories["resumed"] = as_tuples(result)
        torch.save(histories, out / f"history-{rank}.pt")
    finally:
        distributed.cleanup()


def as_tuples(result) -> list[tuple]:
    return [(e["train_loss"], e["val_loss"], e["val_accuracy"]) for e in result.history]


class Stop(Exception):
    pass


def stop_after_first_epoch(stats):
    if stats["epoch"] == 1:
        raise Stop


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """1-process references, and the histories of both ranks of one 2-process run."""
    tmp = tmp_path_factory.mktemp("ddp")
    reference = {
        kind: as_tuples(
            fit(make_model(), ClassificationTask(), *datasets(kind), CONFIG, torch.device("cpu"), progress=False)
        )
        for kind in ("dataloader", "batch")
    }
    with pytest.raises(Stop):
        fit(
            make_model(),
            ClassificationTask(),
            *datasets("dataloader"),
            CONFIG,
            torch.device("cpu"),
            progress=False,
            checkpoint_dir=tmp / "ckpt-resume",
            on_epoch=stop_after_first_epoch,
        )
    mp.spawn(_worker, args=(2, free_port(), str(tmp)), nprocs=2, join=True)
    return tmp, reference, [torch.load(tmp / f"history-{r}.pt") for r in range(2)]


def assert_same_trajectory(reference, other):
    assert len(other) == len(reference)
    for (loss1, val1, acc1), (loss2, val2, acc2) in zip(reference, other):
        assert loss2 == pytest.approx(loss1, rel=1e-4)
        assert val2 == pytest.approx(val1, rel=1e-4)
        assert acc2 == pytest.approx(acc1, abs=1e-6)


@pytest.mark.parametrize("kind", ["dataloader", "batch"])
def test_two_processes_follow_the_one_process_trajectory(runs, kind):
    tmp, reference, (rank0, rank1) = runs
    assert rank0[kind] == rank1[kind]  # both ranks report the same all-reduced history
    assert reference[kind][-1][0] < 0.7 * reference[kind][0][0]  # it learns, so the comparison means something
    assert_same_trajectory(reference[kind], rank0[kind])
    assert sorted(p.name for p in (tmp / f"ckpt-{kind}").iterdir()) == ["best.pt", "last.pt"]
    assert torch.load(tmp / f"ckpt-{kind}" / "last.pt", weights_only=False)["epoch"] == CONFIG.epochs


def test_two_processes_resume_a_run_where_it_stopped(runs):
    _, reference, (rank0, rank1) = runs
    assert rank0["resumed"] == rank1["resumed"]
    assert_same_trajectory(reference["dataloader"], rank0["resumed"])
