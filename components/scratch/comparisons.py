"""The comparisons of the deep-learning course notebooks, as small training runs of ``DenseClassifier``.

Four groups, each a list of arms that differ from a shared base configuration in one respect:
initialisation (zeros, random, He, Xavier), optimiser (batch GD, minibatch SGD, momentum, RMSProp, Adam),
regularisation (none, L2, dropout) and learning-rate decay. Each arm returns its per-epoch history, so the
caller can log it as a child run and plot the arms of a group together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from components.scratch.dense import DenseClassifier


@dataclass
class Arm:
    group: str
    name: str
    params: dict  # DenseClassifier parameters that differ from the base
    train_size: int | None = None  # a smaller training set (the regularisation group overfits on purpose)
    epochs: int | None = None


@dataclass
class ArmResult:
    arm: Arm
    params: dict  # every DenseClassifier parameter used
    history: list[dict]
    metrics: dict[str, float] = field(default_factory=dict)


def default_arms(
    optimizer_lrs: Mapping[str, float],
    l2: float,
    keep_prob: float,
    decays: Mapping[str, float],
    sgd_lr: float,
    reg_train_size: int,
    reg_epochs: int,
    decay_interval: int = 2,
) -> list[Arm]:
    arms = [
        Arm("init", init, {"init": init, "optimizer": "sgd", "lr": sgd_lr})
        for init in ("zeros", "random", "he", "xavier")
    ]
    arms += [Arm("optimizer", name, {"optimizer": name, "lr": lr}) for name, lr in optimizer_lrs.items()]
    reg = {"optimizer": "adam", "lr": optimizer_lrs.get("adam", 1e-3)}
    arms += [
        Arm("regularization", "none", dict(reg), reg_train_size, reg_epochs),
        Arm("regularization", f"l2={l2:g}", {**reg, "l2": l2}, reg_train_size, reg_epochs),
        Arm(
            "regularization", f"dropout keep={keep_prob:g}", {**reg, "keep_prob": keep_prob}, reg_train_size, reg_epochs
        ),
    ]
    arms += [
        Arm(
            "lr_decay",
            kind,
            {"optimizer": "sgd", "lr": sgd_lr, "decay": kind, "decay_rate": rate, "decay_interval": decay_interval},
        )
        for kind, rate in decays.items()
    ]
    return arms


def run_arms(
    arms: list[Arm], base: Mapping, X_train, y_train, X_val, y_val, on_arm: Callable[[ArmResult], None] | None = None
) -> list[ArmResult]:
    results, done = [], {}
    for arm in arms:
        params = {**base, **arm.params}
        if arm.epochs is not None:
            params["epochs"] = arm.epochs
        n = len(X_train) if arm.train_size is None else min(arm.train_size, len(X_train))
        key = repr(sorted({**params, "train_size": n}.items()))
        if key not in done:  # e.g. "He init", "minibatch SGD" and "no decay" are one configuration: train it once
            clf = DenseClassifier(**params).fit(X_train[:n], y_train[:n], X_val, y_val)
            last = clf.history_[-1]
            metrics = {
                "val_accuracy": last["val_accuracy"],
                "val_loss": last["val_loss"],
                "train_accuracy": last["train_accuracy"],
                "train_loss": last["train_loss"],
                "generalization_gap": last["train_accuracy"] - last["val_accuracy"],
                "best_val_accuracy": max(h["val_accuracy"] for h in clf.history_),
            }
            done[key] = (clf.history_, {k: float(v) for k, v in metrics.items()})
        history, metrics = done[key]
        result = ArmResult(arm, {**params, "train_size": n}, history, dict(metrics))
        results.append(result)
        if on_arm is not None:
            on_arm(result)
    return results
