"""The one loop reproduces the four loops it replaced (fit_detector, fit_seq2seq, fit_token_lm, fit_keypoints).

Each case trains a tiny model on tiny synthetic data through ``fit`` with the matching task and compares the
epoch history with the one the old loop produced at commit 0f37c69 on the same data, model and settings
(CPU, fp32; numbers below recorded by running the old function there with the ``setup_*`` of this file).
Detection, seq2seq and the token LM draw their batches and flips from the same seeded generator as before,
so they must agree to float rounding (rel 1e-4). The keypoint loop drew its order and flips from NumPy;
the new one draws them from the loop's torch generator (checkpointed with the run), so the batches differ
and only the learning is compared: the final validation RMSE within 2 % of the old loop's (measured: 15.85
against 15.83 px), and the same per-epoch LR and momentum.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.unit

CPU = torch.device("cpu")


def setup_detection():
    from components.models.yolo import TinyYOLO
    from components.training.detection import BoxBatches, DecodeConfig

    rng = np.random.default_rng(0)
    images, boxes = [], []
    for _ in range(40):  # one bright square "car" per 32 px image
        img = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
        x0, y0 = rng.integers(0, 20, 2)
        side = int(rng.integers(8, 12))
        img[y0 : y0 + side, x0 : x0 + side] = 220
        images.append(img)
        boxes.append(np.array([[x0, y0, x0 + side, y0 + side, 0]], dtype=np.float64))
    images = np.stack(images)
    torch.manual_seed(0)
    model = TinyYOLO(1, [[0.3, 0.3]], widths=(8, 16, 16))
    train, val = BoxBatches.from_arrays(images[:32], boxes[:32]), BoxBatches.from_arrays(images[32:], boxes[32:])
    kwargs = dict(
        val_truth=[b.copy() for b in boxes[32:]],
        classes=("car",),
        decode_config=DecodeConfig(),
        loss_weights={"noobj_weight": 0.5, "box_weight": 5.0},
        flip=True,
    )
    return model, train, val, kwargs, dict(epochs=4, batch_size=8, lr=0.01, patience=100)


def setup_seq2seq():
    from components.models.transformer import Transformer
    from components.training.seq2seq import EncodedPairs, pad_ids

    rng = np.random.default_rng(0)
    src, tgt = [], []
    for _ in range(64):  # reverse 3..6 ids from 4..11; targets are <bos>=1 ... <eos>=2, pad 0
        seq = rng.integers(4, 12, int(rng.integers(3, 7))).tolist()
        src.append(seq)
        tgt.append([1, *seq[::-1], 2])
    pairs = EncodedPairs(pad_ids(src, 0), pad_ids(tgt, 0))
    train, val = EncodedPairs(pairs.src[:48], pairs.tgt[:48]), EncodedPairs(pairs.src[48:], pairs.tgt[48:])
    torch.manual_seed(0)
    model = Transformer(12, 12, d_model=16, heads=2, encoder_layers=1, decoder_layers=1, d_ff=32, dropout=0.1)
    return model, train, val, dict(pad_id=0, label_smoothing=0.1), dict(epochs=4, batch_size=16, lr=0.01, patience=100)


def setup_token_lm():
    from components.models.note_lstm import NoteLSTM

    rng = np.random.default_rng(0)
    seqs = []
    for _ in range(30):  # <bos>=1, a repeating pattern of 3..7 with noise, <eos>=2
        body = [
            3 + (i % 5) if rng.random() > 0.1 else int(rng.integers(3, 8)) for i in range(int(rng.integers(10, 40)))
        ]
        seqs.append([1, *body, 2])
    torch.manual_seed(0)
    model = NoteLSTM(8, embed_dim=8, hidden_size=16, dropout=0.0, pad_id=0)
    return model, seqs[:24], seqs[24:], dict(pad_id=0, window=12), dict(epochs=4, batch_size=8, lr=0.01, patience=100)


def setup_keypoints():
    from components.models.keypoint_cnn import KeypointCNN

    rng = np.random.default_rng(0)
    n, X, Y = 48, [], []
    for _ in range(n):  # two bright dots (left and right "eye") on noise; a few coordinates missing
        img = rng.integers(0, 40, (96, 96)).astype(np.uint8)
        y0, xl, xr = int(rng.integers(30, 60)), int(rng.integers(15, 40)), int(rng.integers(56, 80))
        img[y0 - 2 : y0 + 3, xl - 2 : xl + 3] = 250
        img[y0 - 2 : y0 + 3, xr - 2 : xr + 3] = 250
        X.append(img)
        Y.append([xl, y0, xr, y0])
    X, Y = np.stack(X), np.array(Y, dtype=np.float64)
    Y[rng.random(n) < 0.2, 2:] = np.nan
    torch.manual_seed(0)
    model = KeypointCNN(outputs=4, widths=(8, 8), context=(8, 8), dropout=(0.0, 0.0))
    mirror = np.array([1, 0])
    settings = dict(
        epochs=8,
        batch_size=16,
        optimizer="nesterov",
        lr=0.1,
        lr_end=0.02,
        momentum=0.9,
        momentum_end=0.95,
        patience=100,
    )
    return model, (X[:36], Y[:36]), (X[36:], Y[36:]), mirror, settings


# The old loops' histories at 0f37c69 (CPU, fp32): train_loss, val_loss, and the monitored metric, per epoch.
OLD = {
    "detection": {
        "train_loss": [24.1924119, 19.7103672, 16.045017, 14.78725362],
        "val_loss": [20.33564949, 17.07220459, 14.45499992, 13.42864895],
        "val_map50": [0.0, 0.23730353, 0.59945324, 0.61352564],
    },
    "seq2seq": {
        "train_loss": [2.62345457, 2.49990288, 2.36433649, 2.32155609],
        "val_loss": [2.47489634, 2.31512208, 2.2440489, 2.23488877],
        "val_token_accuracy": [0.11363636, 0.11363636, 0.26136364, 0.27272727],
    },
    "token_lm": {
        "train_loss": [2.06752991, 1.84313944, 1.52027069, 1.37647369],
        "val_loss": [1.9540732, 1.55338034, 1.28407496, 1.24346464],
    },
    "keypoints": {
        "train_loss": [0.12164233, 0.11204509, 0.09778607, 0.08678391, 0.07233731, 0.06799626, 0.06099168, 0.06440666],
        "val_loss": [0.11656275, 0.11612027, 0.11537493, 0.11434595, 0.11304079, 0.11163012, 0.11016164, 0.1087722],
        "val_rmse": [
            16.38781771,
            16.35668344,
            16.304105,
            16.23123775,
            16.13833907,
            16.0373248,
            15.93149156,
            15.83070266,
        ],
    },
}


def new_history(case: str) -> list[dict]:
    from components.settings import TrainSettings
    from components.training.loop import fit
    from components.training.tasks import DetectionTask, KeypointTask, Seq2SeqTask, TokenLMTask

    if case == "detection":
        model, train, val, kwargs, settings = setup_detection()
        task = DetectionTask(**kwargs)
    elif case == "seq2seq":
        model, train, val, kwargs, settings = setup_seq2seq()
        task = Seq2SeqTask(**kwargs)
    elif case == "token_lm":
        model, train, val, kwargs, settings = setup_token_lm()
        task = TokenLMTask(**kwargs)
    else:
        model, train, val, mirror, settings = setup_keypoints()
        task, settings = KeypointTask(mirror), {**settings, "schedule": "linear", "grad_clip": None, "amp": False}
    return fit(model, task, train, val, TrainSettings(**settings), CPU, seed=0, progress=False).history


MONITORED = {"detection": "val_map50", "seq2seq": "val_token_accuracy", "token_lm": "val_loss", "keypoints": "val_rmse"}


@pytest.mark.parametrize("case", ["detection", "seq2seq", "token_lm"])
def test_the_task_reproduces_the_old_loops_history(case):
    old = OLD[case]
    new = new_history(case)
    assert len(new) == len(old["train_loss"])
    assert old["train_loss"][-1] < old["train_loss"][0]  # it learns, so agreeing means something
    for key in ("train_loss", "val_loss", MONITORED[case]):
        assert [row[key] for row in new] == pytest.approx(old[key], rel=1e-4, abs=1e-6), key


def test_the_keypoint_task_learns_as_well_as_the_old_loop():
    old = OLD["keypoints"]
    new = new_history("keypoints")
    assert len(new) == len(old["val_rmse"])
    assert new[-1]["val_rmse"] == pytest.approx(old["val_rmse"][-1], rel=0.02)
    assert new[-1]["val_rmse"] < new[0]["val_rmse"] - 0.3
    assert new[-1]["train_loss"] < 0.7 * new[0]["train_loss"]
    # the old loop's schedule: lr 0.1 -> 0.02 and momentum 0.9 -> 0.95 on a line over the 8 epochs
    assert [row["lr"] for row in new] == pytest.approx([0.1 - 0.08 * k / 7 for k in range(8)])
    assert [row["momentum"] for row in new] == pytest.approx([0.9 + 0.05 * k / 7 for k in range(8)])
