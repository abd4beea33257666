"""Two-phase transfer runs: the head then the top layers, and a killed run, started again on the same checkpoint
directory, that ends as an uninterrupted one.

Killed in phase 1 (head): the rerun continues phase 1 from its last epoch. Killed in phase 2 (finetune): the
rerun does not train phase 1 again (nor recompute its feature cache) and continues phase 2. Either way the
histories and the final weights are those of the run that was never interrupted.
"""

from __future__ import annotations

import pytest
import torch

from components.models.transfer import TransferNet, normalization
from components.settings import TrainSettings
from components.training import augment, transfer
from components.training.transfer import TransferConfig, fit_transfer
from tests.test_transfer import colour_images

pytestmark = pytest.mark.integration  # real training runs, stopped and resumed

TIMINGS = {"seconds", "train_seconds"}


class Crash(Exception):
    """Stands in for kill -9: raised from on_epoch, after that epoch's checkpoint is written."""


VARIANTS = {
    # the face-mask-transfer setup: pretrained base, head on cached features, then the top layers
    "pretrained-cached": dict(weights="imagenet", cache_features=True),
    # from scratch: every layer learns, BatchNorm statistics recomputed after every epoch
    "scratch": dict(weights=None, cache_features=False),
}


def run(variant: str, checkpoint_dir=None, crash_at: int | None = None):
    """One fit_transfer of 2 head + 2 finetune epochs on 16 tiny images (8 to train, 8 to validate); returns (result, net, epochs seen)."""
    opts = VARIANTS[variant]
    X, y = colour_images(16)
    mean, std = normalization("efficientnet_lite0")
    train = augment.ArrayDataset(X[:8], y[:8], augment.train_transform("light", mean, std))
    plain = augment.ArrayDataset(X[:8], y[:8], augment.normalize(mean, std))
    val = augment.ArrayDataset(X[8:], y[8:], augment.normalize(mean, std))
    torch.manual_seed(0)  # the head's initial weights, as TransferImageClassifier seeds them
    net = TransferNet("efficientnet_lite0", num_classes=2, weights=opts["weights"], dropout=0.2)
    config = TransferConfig(
        head=TrainSettings(epochs=2, batch_size=8, lr=3e-2, schedule="onecycle", patience=9),
        finetune=TrainSettings(epochs=2, batch_size=8, lr=1e-3, schedule="onecycle", patience=9),
        finetune_layers=2,
        cache_features=opts["cache_features"],
    )
    seen = []

    def on_epoch(stats):
        seen.append(stats["epoch"])
        if stats["epoch"] == crash_at:
            raise Crash

    result = fit_transfer(
        net,
        train,
        val,
        config,
        torch.device("cpu"),
        plain_train_set=plain,
        on_epoch=on_epoch,
        checkpoint_dir=checkpoint_dir,
        resume=True,
        progress=False,
    )
    return result, net, seen


_straight = {}


def straight(variant: str):
    """The uninterrupted run, once per variant."""
    if variant not in _straight:
        _straight[variant] = run(variant)
    return _straight[variant]


def assert_same_run(a, b):
    (result_a, net_a, _), (result_b, net_b, _) = a, b
    rows_a, rows_b = result_a.as_rows(), result_b.as_rows()
    assert [(r["epoch"], r["phase"]) for r in rows_a] == [(r["epoch"], r["phase"]) for r in rows_b]
    for ra, rb in zip(rows_a, rows_b):
        assert set(ra) == set(rb)
        for key in set(ra) - TIMINGS - {"phase"}:
            assert ra[key] == pytest.approx(rb[key], rel=1e-6, abs=1e-6), (ra["epoch"], key)
    assert result_a.kept == result_b.kept and result_a.best_epoch == result_b.best_epoch
    state_a, state_b = net_a.state_dict(), net_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for name in state_a:
        assert torch.equal(state_a[name], state_b[name]), name


@pytest.mark.parametrize("variant", ["pretrained-cached"])  # from scratch, phase 1 is a plain fit's resume
def test_killed_in_phase_1_the_rerun_continues_phase_1(tmp_path, variant):
    with pytest.raises(Crash):
        run(variant, tmp_path, crash_at=1)
    assert (tmp_path / "head" / "last.pt").exists() and not (tmp_path / "finetune").exists()

    resumed = run(variant, tmp_path)

    assert resumed[2] == [2, 3, 4]  # epoch 1 was done: the rerun trains the others only
    assert_same_run(straight(variant), resumed)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_killed_in_phase_2_the_rerun_skips_phase_1_and_continues_phase_2(tmp_path, variant, monkeypatch):
    reference = straight(variant)  # before pooled_features is patched away
    with pytest.raises(Crash):
        run(variant, tmp_path, crash_at=3)  # the first fine-tuning epoch
    assert (tmp_path / "head" / "last.pt").exists() and (tmp_path / "finetune" / "last.pt").exists()

    def no_features(*args, **kwargs):
        raise AssertionError("a finished head phase does not need the feature cache again")

    monkeypatch.setattr(transfer, "pooled_features", no_features)
    resumed = run(variant, tmp_path)

    assert resumed[2] == [4]
    assert_same_run(reference, resumed)

    # Started once more after it finished, the run trains nothing and ends the same.
    again = run(variant, tmp_path)
    assert again[2] == []
    assert_same_run(reference, again)


def test_two_phases_train_the_head_then_only_the_top_layers_with_checkpoints(tmp_path):
    X, y = colour_images(96)
    mean, std = normalization("efficientnet_lite0")
    train = augment.ArrayDataset(X[:64], y[:64], augment.train_transform("light", mean, std))
    val = augment.ArrayDataset(X[64:], y[64:], augment.normalize(mean, std))
    net = TransferNet("efficientnet_lite0", num_classes=2, weights="imagenet")
    pretrained = {k: v.clone() for k, v in net.base.state_dict().items()}
    config = TransferConfig(
        head=TrainSettings(epochs=4, batch_size=16, lr=3e-2, schedule="constant", patience=9),
        finetune=TrainSettings(epochs=2, batch_size=16, lr=1e-3, schedule="constant", patience=9),
        finetune_layers=2,
    )
    seen = []

    result = fit_transfer(
        net, train, val, config, torch.device("cpu"), on_epoch=seen.append, checkpoint_dir=tmp_path, progress=False
    )

    assert [e["epoch"] for e in seen] == [1, 2, 3, 4, 5, 6]  # one run of epochs across both phases
    assert [r["phase"] for r in result.as_rows()] == ["head"] * 4 + ["finetune"] * 2
    top = {f"{n}." for names in net.layer_names[-2:] for n in names}
    moved = {
        k for k, v in net.base.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, pretrained[k])
    }
    if result.kept == "finetune":
        assert moved and all(any(k.startswith(t) for t in top) for k in moved)
    else:  # fine-tuning did not beat the head phase, so the pretrained base is back untouched
        assert not moved
    assert max(e["val_accuracy"] for e in seen) >= 0.9
    for phase in ("head", "finetune"):
        assert (tmp_path / phase / "best.pt").is_file()
        assert (tmp_path / phase / "last.pt").is_file()  # resume state, until the caller removes the directory
