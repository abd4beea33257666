"""The one loop with its tasks: a run killed (SIGKILL) or crashed mid-way and started again ends as the
uninterrupted run does, early stopping keeps the monitored best epoch in either direction, segmentation
learns, and the pipeline's checkpoints have a place that survives a failed run but not a changed config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from components.settings import TrainSettings
from components.training.loop import fit
from components.training.tasks import ClassificationTask, SegmentationTask, Seq2SeqTask, TokenLMTask
from tests.test_trainer_parity import setup_seq2seq, setup_token_lm

pytestmark = pytest.mark.unit

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[1]


def seq2seq_run(checkpoint_dir=None, on_epoch=None, resume=False):
    model, train, val, kwargs, settings = setup_seq2seq()
    return fit(
        model,
        Seq2SeqTask(**kwargs),
        train,
        val,
        TrainSettings(**settings),
        CPU,
        seed=3,
        progress=False,
        checkpoint_dir=checkpoint_dir,
        on_epoch=on_epoch,
        resume=resume,
    )


class Crash(RuntimeError):
    pass


def test_a_token_lm_run_with_the_linear_nesterov_schedule_resumes_where_it_crashed(tmp_path):
    def run(**kw):
        model, train, val, task_kwargs, settings = setup_token_lm()
        settings = TrainSettings(
            **{
                **settings,
                "optimizer": "nesterov",
                "schedule": "linear",
                "lr": 0.5,
                "lr_end": 0.1,
                "momentum": 0.8,
                "momentum_end": 0.9,
            }
        )
        return fit(model, TokenLMTask(**task_kwargs), train, val, settings, CPU, seed=1, progress=False, **kw)

    straight = run().history

    def crash(row):
        if row["epoch"] == 3:
            raise Crash

    with pytest.raises(Crash):
        run(checkpoint_dir=tmp_path, on_epoch=crash)
    resumed = run(checkpoint_dir=tmp_path, resume=True).history
    assert [r["lr"] for r in resumed] == pytest.approx([0.5 - 0.4 * k / 3 for k in range(4)])
    assert [r["momentum"] for r in resumed] == pytest.approx([0.8 + 0.1 * k / 3 for k in range(4)])
    assert [r["val_loss"] for r in resumed] == pytest.approx([r["val_loss"] for r in straight], rel=1e-5)
    assert [r["train_loss"] for r in resumed] == pytest.approx([r["train_loss"] for r in straight], rel=1e-5)
    assert straight[-1]["train_loss"] < 0.8 * straight[0]["train_loss"]


class ScriptedMetric(ClassificationTask):
    """Classification whose monitored metric follows a script, to see which epoch the loop keeps."""

    def __init__(self, values, mode):
        super().__init__()
        self.values, self.mode, self.monitor, self.epoch = values, mode, "score", 0

    def validate(self, model, data, runtime):
        self.epoch += 1
        return {**super().validate(model, data, runtime), "score": self.values[self.epoch - 1]}


@pytest.mark.parametrize("mode, best", [("max", 3), ("min", 2)])
def test_early_stopping_keeps_the_best_epoch_of_the_monitored_metric_in_its_direction(mode, best):
    rng = np.random.default_rng(0)
    x, y = torch.tensor(rng.normal(size=(64, 4)), dtype=torch.float32), torch.tensor(rng.integers(0, 2, 64))
    data = torch.utils.data.TensorDataset(x, y)
    weights = {}
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    result = fit(
        model,
        ScriptedMetric([0.2, 0.1, 0.9, 0.5, 0.4, 0.3, 0.8], mode),
        data,
        data,
        TrainSettings(epochs=7, batch_size=16, lr=0.05, patience=3),
        CPU,
        progress=False,
        on_epoch=lambda row: weights.__setitem__(row["epoch"], model.weight.detach().clone()),
    )
    assert result.best_epoch == best
    assert result.stopped_early and len(result.history) == best + 3  # patience 3 after the best
    assert torch.equal(model.weight, weights[best])  # the best epoch's weights, not the last ones


def test_segmentation_learns_pixel_classes_and_reports_per_pixel_accuracy():
    from components.models.unet import UNet

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, (32, 3, 16, 16)).astype(np.float32)
    masks = np.zeros((32, 16, 16), dtype=np.int64)
    for i in range(32):  # a bright square is class 1
        r, c = rng.integers(0, 10, 2)
        x[i, :, r : r + 6, c : c + 6] += 1.5
        masks[i, r : r + 6, c : c + 6] = 1
    data = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(masks))
    torch.manual_seed(0)
    result = fit(
        UNet(2, widths=(4, 8)),
        SegmentationTask(),
        data,
        data,
        TrainSettings(epochs=6, batch_size=8, lr=0.03, patience=100),
        CPU,
        progress=False,
    )
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < 0.6 * first["train_loss"]
    assert first["val_pixel_accuracy"] < last["val_pixel_accuracy"] <= 1.0  # per pixel: a per-mask count exceeds 1
    assert last["val_pixel_accuracy"] > 1 - masks.mean()  # above calling every pixel background


def test_pipeline_checkpoints_survive_a_new_run_but_not_a_changed_config_and_go_on_publish(tmp_path):
    from components.tracking.outputs import RunOutputs

    outputs = RunOutputs(tmp_path, "demo").begin()
    here = outputs.checkpoint_dir({"train": {"epochs": 3}}, "md5-a")
    (here / "last.pt").write_bytes(b"resume state")
    (here / "best.pt").write_bytes(b"weights")
    outputs.discard()  # the run failed
    again = RunOutputs(tmp_path, "demo").begin()
    assert again.checkpoint_dir({"train": {"epochs": 3}}, "md5-a") == here and (here / "last.pt").exists()
    assert again.checkpoint_dir({"train": {"epochs": 4}}, "md5-a") != here
    assert again.checkpoint_dir({"train": {"epochs": 3}}, "md5-b") != here
    again.keep_model_files(here)
    assert sorted(p.name for p in again.model_dir.iterdir()) == ["best.pt"]  # no resume state for DVC
    final = again.publish()
    assert (final / "model" / "best.pt").exists() and not (tmp_path / ".checkpoints" / "demo").exists()
