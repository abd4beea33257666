"""A training run killed with SIGKILL (no cleanup, no exception: the process is gone) resumes from its last
checkpoint to the history of a run never interrupted: classification and seq2seq, each in a real subprocess.

Integration tier: each test starts and kills a Python process that imports torch (several seconds)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from components.settings import TrainSettings
from components.training.augment import ArrayDataset
from components.training.loop import fit
from components.training.tasks import ClassificationTask
from tests.conftest import REPO
from tests.test_trainer_tasks import seq2seq_run
from tests.test_training import blobs, tiny_cnn

pytestmark = pytest.mark.integration


KILLED_AT_EPOCH_2 = """
import os, signal, sys
import torch
from pathlib import Path
from components.settings import TrainSettings
from components.training.augment import ArrayDataset
from components.training.loop import fit
from components.training.tasks import ClassificationTask
from tests.test_training import blobs, tiny_cnn

def kill_9(stats):
    if stats["epoch"] == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception: the process is just gone

x, y = blobs(64)
torch.manual_seed(1)
config = TrainSettings(epochs=4, batch_size=16, lr=0.01, patience=100)
fit(tiny_cnn(), ClassificationTask(), ArrayDataset(x, y), ArrayDataset(x, y), config, torch.device("cpu"),
    progress=False, checkpoint_dir=Path(sys.argv[1]), on_epoch=kill_9, resume=True)
"""


def test_a_run_killed_by_sigkill_resumes_from_its_last_checkpoint(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    x, y = blobs(64)
    config = TrainSettings(epochs=4, batch_size=16, lr=0.01, patience=100)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_EPOCH_2, str(tmp_path)], env=env, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert (tmp_path / "last.pt").exists() and not (tmp_path / "last.pt.tmp").exists()
    epochs_seen = []
    torch.manual_seed(999)  # a different initialisation: the rest must come from the checkpoint
    resumed = fit(
        tiny_cnn(),
        ClassificationTask(),
        ArrayDataset(x, y),
        ArrayDataset(x, y),
        config,
        torch.device("cpu"),
        progress=False,
        checkpoint_dir=tmp_path,
        resume=True,
        on_epoch=lambda stats: epochs_seen.append(stats["epoch"]),
    )
    assert epochs_seen == [3, 4]  # epochs 1 and 2 were done before the kill
    torch.manual_seed(1)
    straight = fit(
        tiny_cnn(),
        ClassificationTask(),
        ArrayDataset(x, y),
        ArrayDataset(x, y),
        config,
        torch.device("cpu"),
        progress=False,
    )
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5, abs=1e-6)


def test_a_seq2seq_run_killed_with_sigkill_resumes_to_the_uninterrupted_history(tmp_path):
    straight = seq2seq_run().history
    # A real kill -9 right after epoch 2's checkpoint: nothing gets to clean up or flush.
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from tests.test_trainer_tasks import seq2seq_run
        def kill(row):
            if row["epoch"] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        seq2seq_run(Path({str(tmp_path)!r}), on_epoch=kill)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert torch.load(tmp_path / "last.pt", weights_only=False)["epoch"] == 2
    torch.manual_seed(999)  # the model is built again with other weights: all must come from the checkpoint
    resumed = seq2seq_run(tmp_path, resume=True).history
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4]
    for a, b in zip(straight, resumed):
        for key in ("train_loss", "val_loss", "val_token_accuracy"):
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key
    assert straight[-1]["train_loss"] < 0.95 * straight[0]["train_loss"]  # it learns, so the match means something
