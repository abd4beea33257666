"""The two-phase transfer-learning schedule, each phase one call of ``training.fit``.

    result = fit_transfer(net, train_set, val_set, TransferConfig(head=TrainSettings(epochs=5, lr=3e-3),
                          finetune=TrainSettings(epochs=3, lr=1e-5), finetune_layers=11), device)

1. head: the pretrained base is frozen and only the new head learns. A base without pretrained weights has
   nothing to protect, so it learns from the start (training from scratch).
2. finetune: the top ``finetune_layers`` layers of the base learn too, at the phase's lower learning rate.

Each phase has its own early stopping and checkpoints (``<checkpoint_dir>/head``, ``.../finetune``: best.pt
and the resume state last.pt). With ``resume=True`` a killed run continues where it stopped: a phase that had
finished is not run again (its kept weights and its history come back from its last.pt, without recomputing
the feature cache), the unfinished one continues from its last epoch, so the rerun ends with the weights and
history of an uninterrupted run. A finished phase keeps its last.pt for that: the checkpoint directory is the
caller's to remove once the whole run is done (the pipeline's ``RunOutputs`` copies all but last.pt into the
model output and deletes its checkpoints when the run is published). The schedule ends on the best validation
loss over both phases: if fine-tuning never beats the head phase, the head weights stay.

A base trained from scratch gets its BatchNorm statistics recomputed (``recompute_batchnorm``) after every
epoch, before validation, so that early stopping, the frozen layers of phase 2 and the final model run in
inference mode on the statistics of their own weights; see that function for why the running averages are not
enough.

``cache_features`` runs the frozen base once over the un-augmented training images and trains the head on the
stored features: exactly what phase 1 computes without augmentation (the frozen base is deterministic in
inference mode), and many times cheaper on a CPU. Phase 2 always sees augmented images. Torch only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from components.models.transfer import TransferNet
from components.training.device_data import BatchLoader
from components.training.loop import FitResult, LoopSettings, fit, restore_finished, use_cuda_backends
from components.training.tasks import ClassificationTask


@dataclass
class TransferConfig:
    head: LoopSettings  # a TrainSettings section
    finetune: LoopSettings | None = None  # None: no fine-tuning phase
    finetune_layers: int = 0
    cache_features: bool = False


@dataclass
class TransferFitResult:
    """Both phases' histories, numbered as one run of epochs (phase 2 continues where phase 1 stopped)."""

    phases: dict[str, FitResult] = field(default_factory=dict)
    kept: str = "head"  # the phase whose best weights the model holds

    def _offsets(self) -> dict[str, int]:
        offsets, done = {}, 0
        for name, result in self.phases.items():
            offsets[name] = done
            done += len(result.history)
        return offsets

    def as_rows(self) -> list[dict]:
        offsets = self._offsets()
        return [
            {**e, "epoch": offsets[name] + e["epoch"], "phase": name}
            for name, result in self.phases.items()
            for e in result.history
        ]

    @property
    def history(self) -> list[dict]:
        offsets = self._offsets()
        return [{**e, "epoch": offsets[n] + e["epoch"]} for n, r in self.phases.items() for e in r.history]

    @property
    def best_epoch(self) -> int:
        return self._offsets()[self.kept] + self.phases[self.kept].best_epoch

    @property
    def stopped_early(self) -> bool:
        return any(r.stopped_early for r in self.phases.values())


def batches(dataset: Dataset, device: torch.device, batch_size: int, train: bool):
    """(x, y) batches of ``dataset`` in order, x on ``device``: a batch dataset (``get_batch``) gathered and, with
    ``train``, augmented on the device a whole batch at a time; any other dataset through a DataLoader (its own
    per-item transform)."""
    if hasattr(dataset, "get_batch"):
        on_device = dataset.to(device)
        yield from BatchLoader(on_device, batch_size, range(len(on_device)), train=train, drop_last=False)
        return
    for x, y in DataLoader(dataset, batch_size=batch_size):
        yield x.to(device, non_blocking=True), y


@torch.no_grad()
def pooled_features(net: TransferNet, dataset: Dataset, device: torch.device, batch_size: int = 64) -> TensorDataset:
    """(features, labels) of the frozen base with the head's global pooling applied: what the head's layers see."""
    net.to(device).eval()
    pool = net.head[:2]  # AdaptiveAvgPool2d + Flatten: no parameters
    feats, labels = [], []
    for x, y in batches(dataset, device, batch_size, train=False):
        feats.append(pool(net.base(x)).float())
        labels.append(y)
    return TensorDataset(torch.cat(feats).cpu(), torch.cat(labels).cpu())


@torch.no_grad()
def recompute_batchnorm(net: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 64) -> None:
    """Set every BatchNorm's running mean and variance to their average over ``dataset`` under the current weights.

    Training from scratch needs it. Running statistics start at mean 0, variance 1 and move 10% a step, but
    MobileNetV2's depthwise convolutions start with output variances of 1e-2 to 1e-5 (torchvision's fan-out
    init; a 3x3 kernel on a 1x1 map at 32 px uses one tap). After a few steps (a small dataset, an epoch or two)
    inference mode divides such a layer's output by 10 to 100 times its real spread, block after block: the
    network gives every image the same class while it learns in training mode, validation sits at chance and
    early stopping keeps the first epoch. The statistics of the current weights over the training images
    (augmented, as training saw them) make inference compute what training learned. Every BatchNorm is
    re-estimated, frozen ones too, so call it only where no pretrained statistics are to be kept.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:  # VGG16: nothing to recompute
        return
    momenta = [bn.momentum for bn in norms]
    was_training = net.training
    net.to(device).eval()  # dropout off; only the BatchNorm layers run in training mode
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # None: a plain average over the whole pass, not an exponential one
        bn.train()
    # The pass draws augmentations; on a forked generator, so training's random stream is the same with or without it.
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        for x, _ in batches(dataset, device, batch_size, train=True):
            net(x)
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
    net.train(was_training)


def fit_transfer(
    net: TransferNet,
    train_set: Dataset,
    val_set: Dataset,
    config: TransferConfig,
    device: torch.device,
    *,
    plain_train_set: Dataset | None = None,
    seed: int = 0,
    on_epoch: Callable[[dict], None] | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TransferFitResult:
    """Train ``net`` in place through both phases; ``plain_train_set`` (no augmentation) feeds the feature cache.

    ``resume=True`` continues a killed run from ``checkpoint_dir`` (see the module's docstring)."""
    result = TransferFitResult()
    done = 0

    def phase_dir(name: str) -> Path | None:
        return checkpoint_dir / name if checkpoint_dir is not None else None

    def finished(name: str, module: nn.Module, phase_config: LoopSettings) -> bool:
        """A rerun's phase that had finished: its end state restored, it is not run again."""
        if not resume or checkpoint_dir is None:
            return False
        resolved = phase_config.for_device(device.type) if hasattr(phase_config, "for_device") else phase_config
        fitted = restore_finished(module, phase_dir(name), resolved.epochs, device)  # the epochs fit ran on this device
        if fitted is not None:
            result.phases[name] = fitted
        return fitted is not None

    def run_phase(name: str, module, train, val, phase_config: LoopSettings) -> FitResult:
        def renumbered(stats: dict) -> None:
            if on_epoch is not None:
                on_epoch({**stats, "epoch": done + stats["epoch"]})

        fitted = fit(
            module,
            ClassificationTask(),
            train,
            val,
            phase_config,
            device,
            seed=seed,
            on_epoch=renumbered,
            before_validation=None if net.pretrained else recalibrate,
            checkpoint_dir=phase_dir(name),
            resume=resume,
            progress=progress,
        )
        result.phases[name] = fitted
        return fitted

    # a batch dataset's images go to the device once, not once an epoch for the BatchNorm pass
    calibration_set = train_set.to(device) if hasattr(train_set, "get_batch") else train_set

    def recalibrate(module: nn.Module) -> None:
        recompute_batchnorm(module, calibration_set, device)

    # the feature cache below runs the backbone before fit does: it must see the section's cuDNN switches
    use_cuda_backends(config.head, device)
    if net.pretrained:
        net.freeze_base()
    else:
        net.unfreeze_all()
    if config.cache_features and net.pretrained:
        head_layers = net.head[2:]  # the head's layers after the pooling
        if not finished("head", head_layers, config.head):
            features = [pooled_features(net, s, device) for s in (plain_train_set or train_set, val_set)]
            run_phase("head", head_layers, *features, config.head)
    elif not finished("head", net, config.head):
        run_phase("head", net, train_set, val_set, config.head)
    net.to(device)
    done = len(result.phases["head"].history)
    head_loss = min(e["val_loss"] for e in result.phases["head"].history)

    if config.finetune is not None and config.finetune_layers > 0:
        head_state = copy.deepcopy(net.state_dict())
        net.unfreeze_top(config.finetune_layers)
        if not finished("finetune", net, config.finetune):
            run_phase("finetune", net, train_set, val_set, config.finetune)
        tuned = result.phases["finetune"]
        if min(e["val_loss"] for e in tuned.history) < head_loss:
            result.kept = "finetune"
        else:
            net.load_state_dict(head_state)
    net.requires_grad_(True)
    return result
