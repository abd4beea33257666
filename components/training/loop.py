"""The training loop: one readable function, torch only, the same on CPU, one GPU or several, for every task.

    result = fit(model, ClassificationTask(), train_set, val_set, settings.train, device=resolve_device("auto"))

What differs between a classifier, a detector, a translator, a language model and a keypoint regressor is a
task (``components.training.tasks``): how a batch is drawn (and augmented), its training loss, the epoch's
validation metrics and the one early stopping watches (min or max); the best epoch's weights are kept by it.
Everything else is written once, here: AdamW / SGD / Nesterov and a per-step LR schedule
(``components.training.optim``), gradient clipping, bf16 autocast on CUDA, early stopping, a checkpoint every
epoch (``last.pt``) and of the best epoch (``best.pt``), and resuming from ``last.pt`` (model, optimizer,
schedule, every RNG stream, the data-order generator), so a run continued after a kill ends with the
metrics of an uninterrupted one. Loss sums stay on the device, so a step never waits for the host: the only
host syncs are at the end of an epoch.

``config`` is the validated ``TrainSettings`` section of params.yaml (``components.settings``), typed here by
the fields the loop reads, so this module imports with torch alone.

On a GPU: channels_last memory for CNNs, fused optimizers, cuDNN autotuning only when asked
(``cudnn_benchmark: true``: it searches kernels for every new input shape, once per process), cuDNN itself off when
asked (``cudnn: false``: its per-shape setup on the host can outweigh a short run), optional ``torch.compile``
(``compile: true``), pinned memory and non-blocking copies. A batch dataset
(``components.training.device_data.ImageTensorDataset``) is kept on the GPU when it fits and augmented there a whole
batch at a time; any other ``Dataset`` goes through a ``DataLoader``.

Several GPUs: launch the same program once per GPU with torchrun; ``fit`` sees the process group and trains
with DistributedDataParallel (each rank reads its own shard of every global batch; logging, ``on_epoch`` and
checkpoints on rank 0 only). ``batch_size`` is the GLOBAL batch, split evenly over the ranks, so one config
trains the same model on 1 or N GPUs:

    python benchmarks/train_throughput.py fit --data-dir .bench-data/fashion-mnist                 # 1 GPU
    torchrun --standalone --nproc_per_node=2 benchmarks/train_throughput.py fit --data-dir ...   # 2 GPUs

and in a program of your own:

    ctx = distributed.init_from_env()        # joins torchrun's process group; rank 0 of 1 in a plain run
    fit(model, task, train_set, val_set, config, ctx.device)
    distributed.cleanup()
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from components.errors import TrainingDiverged
from components.training import distributed
from components.training.cuda_graph import GraphedSteps
from components.training.optim import OptimSettings, logged_values, make_optimizer, make_scheduler

log = logging.getLogger("dlfolio")

if TYPE_CHECKING:
    from components.training.tasks import Task


class LoopSettings(OptimSettings, Protocol):
    """The fields of ``components.settings.TrainSettings`` the loop reads (structural: no pydantic here)."""

    batch_size: int
    grad_clip: float | None
    patience: int
    amp: bool
    amp_on_cpu: bool
    num_workers: int
    channels_last: bool | None
    compile: bool


@dataclass(frozen=True)
class Runtime:
    """Where a task's batches and validation run: handed to every task method by the loop."""

    device: torch.device
    rank: int = 0
    world: int = 1
    memory_format: torch.memory_format = torch.contiguous_format
    amp: bool = False  # bf16 autocast, already resolved for the device
    num_workers: int = 0
    static_shapes: bool = False  # training batches of fixed shapes (CUDA graphs replay fixed shapes)

    def autocast(self, cache: bool = True):
        # A CUDA graph must recompute its casts of the weights: no cache kept across its capture.
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp, cache_enabled=cache)


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)  # one row an epoch: epoch, train_loss, the task's metrics, lr ...
    best_epoch: int = 0
    stopped_early: bool = False

    def as_rows(self) -> list[dict]:
        return [dict(row) for row in self.history]


def l1_penalised(model: nn.Module) -> list[nn.Parameter]:
    """What ``train.l1`` penalises: the trainable weight matrices and kernels (2 or more dimensions), not biases
    or normalisation scales, as the NumPy nets' L1 and L2 do."""
    return [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]


@torch.no_grad()
def add_l1_gradient(weights: list[nn.Parameter], l1: float) -> None:
    """Add the gradient of ``l1 * sum |W|`` (the subgradient ``l1 * sign W``, 0 at W = 0) to each weight's
    gradient: the L1 penalty on top of the batch's mean loss, before clipping, on every rank alike."""
    for p in weights:
        if p.grad is not None:
            p.grad.add_(torch.sign(p), alpha=l1)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False")
    return torch.device(name)


def to_device(x: torch.Tensor, device: torch.device, memory_format) -> torch.Tensor:
    if x.ndim == 4 and memory_format is torch.channels_last:
        return x.to(device, non_blocking=True, memory_format=memory_format)
    return x.to(device, non_blocking=True)


def _has_conv2d(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def use_cuda_backends(config: LoopSettings, device: torch.device) -> None:
    """Set the process's cuDNN switches from the section, on CUDA (the CPU has none): before anything of the run
    touches a convolution, since both hold for the rest of the process (a stage is one process)."""
    if device.type != "cuda":
        return
    # Autotuning is off by default: the catalog's runs are short and see many shapes (train, last, validation
    # batches, a backbone's layers), so it cost more than it saved (benchmarks/RESULTS.md, cuDNN autotuning).
    torch.backends.cudnn.benchmark = getattr(config, "cudnn_benchmark", False)
    torch.backends.cudnn.enabled = getattr(config, "cudnn", True)
    torch.set_float32_matmul_precision("high")  # TF32 for whatever autocast leaves in float32


def fit(
    model: nn.Module,
    task: Task,
    train_set,
    val_set,
    config: LoopSettings,
    device: torch.device,
    *,
    seed: int = 0,
    on_epoch: Callable[[dict], None] | None = None,
    before_validation: Callable[[nn.Module], None] | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` in place; on return it holds the weights of the epoch best by ``task.monitor``.

    With ``val_set=None`` it trains every epoch on everything it is given and keeps the last weights: no
    early stopping, no selection (what an active-learning round with a handful of labels needs).

    ``before_validation(model)`` runs after each epoch's steps, before the model is evaluated and its weights
    kept: e.g. to recompute BatchNorm statistics that lag behind a from-scratch network's weights.

    ``resume=True`` continues from ``checkpoint_dir/last.pt`` when there is one; a run that had finished (or
    stopped early) only reloads its best weights.

    Under torchrun every rank calls ``fit`` with the same arguments; ``on_epoch`` runs on rank 0 only and
    every rank returns the same history (losses and metrics are summed over ranks).
    """
    # The section as it trains here: a TrainSettings' GPU profile (``train.cuda``) applies on CUDA only.
    config = config.for_device(device.type) if hasattr(config, "for_device") else config
    rank, world = distributed.rank_and_world()
    is_main = rank == 0
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} (global) does not split evenly over {world} processes")
    local_batch = config.batch_size // world
    # Each rank its own stream for dropout and augmentation; DDP copies rank 0's initial weights to all.
    torch.manual_seed(seed + rank)
    # The order of the data, for tasks that draw their own batches: the same on every rank, saved with each
    # checkpoint so a resumed run reads the very batches the uninterrupted one would.
    generator = torch.Generator().manual_seed(seed)

    use_cuda_backends(config, device)
    use_channels_last = (
        config.channels_last if config.channels_last is not None else (device.type == "cuda" and _has_conv2d(model))
    )
    memory_format = torch.channels_last if use_channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    # CUDA graphs: one process on one GPU, eager (torch.compile has its own graphs)
    graphs = getattr(config, "cuda_graphs", False) and device.type == "cuda" and world == 1 and not config.compile
    runtime = Runtime(
        device,
        rank,
        world,
        memory_format,
        config.amp and (device.type == "cuda" or config.amp_on_cpu),
        config.num_workers,
        static_shapes=graphs,
    )

    train_model = model
    if world > 1:
        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        train_model = torch.compile(train_model)
    graphed = None
    if graphs:

        def graph_loss(batch):
            with runtime.autocast(cache=False):
                return task.loss(train_model, batch)

        graphed = GraphedSteps(graph_loss, model)

    train_loader = task.train_batches(train_set, config.batch_size, runtime, seed=seed, generator=generator)
    val_data = None if val_set is None else task.validation_data(val_set, local_batch * 2, runtime)
    optimizer = make_optimizer(model, config, device)
    scheduler = make_scheduler(optimizer, config, len(train_loader))
    better = (lambda new, old: new > old) if task.mode == "max" else (lambda new, old: new < old)
    # DDP averages the ranks' gradients. A task whose loss is a mean over elements that differ in number between
    # the shards of a step (the real tokens of padded sequences; ``task.loss_elements(batch)`` counts them) has
    # each rank's loss weighed by its share of the step's elements, so the average is the gradient of the mean
    # over the whole global batch, and the epoch's train_loss is the one a single process reports.
    loss_elements = getattr(task, "loss_elements", None) if world > 1 else None

    l1 = getattr(config, "l1", 0.0)  # a config of another shape (or one pickled before L1) has none
    l1_weights = l1_penalised(model) if l1 else []
    result = FitResult()
    best_value, best_state, start_epoch = (-math.inf if task.mode == "max" else math.inf), None, 1
    if resume and checkpoint_dir is not None and (checkpoint_dir / "last.pt").exists():
        state = torch.load(checkpoint_dir / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state, rank)
        generator.set_state(state["generator"])
        result = state["result"]
        best_value, best_state, start_epoch = state["best_value"], state["best_state"], state["epoch"] + 1
        if result.stopped_early:
            start_epoch = config.epochs + 1
        if is_main:  # a run that picks up after a kill should say so, or its short history looks like a bug
            log.info("resuming from %s: epoch %d of %d done", checkpoint_dir / "last.pt", state["epoch"], config.epochs)

    bar = _progress(
        total=config.epochs * len(train_loader),
        initial=(start_epoch - 1) * len(train_loader),
        enabled=progress and is_main,
    )
    for epoch in range(start_epoch, config.epochs + 1):
        started = time.perf_counter()
        train_loader.set_epoch(epoch)
        model.train()
        # The epoch's losses and their weights, summed once at its end: per step, only a reference is kept (an
        # accumulating kernel or two a step cost a small, launch-bound model measurable time).
        losses, weights = [], []
        for batch in train_loader:
            batch = [to_device(t, device, memory_format) for t in batch]
            if graphed is not None:  # forward and backward from a CUDA graph: gradients in .grad, loss detached
                loss, weight = graphed(batch)
            else:
                with runtime.autocast():
                    loss, weight = task.loss(train_model, batch)
                if loss_elements is not None:
                    loss, weight = _shared_loss(loss, weight, loss_elements(batch), world, device)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            if l1_weights:
                add_l1_gradient(l1_weights, l1)
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)  # returns a tensor: no sync
            optimizer.step()
            scheduler.step()
            losses.append(loss.detach())
            weights.append(weight)  # a count or a 0-d tensor, never read on the host here
            bar.update(1)  # counts steps only; the loss is shown once per epoch, so the bar never syncs
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - started
        if before_validation is not None:
            before_validation(model)
        train_loss = distributed.all_reduce_sum(_weighted_sum(losses, weights, device))
        _check_finite(epoch, (train_loss[0] / train_loss[1].clamp(min=1)), model)
        if val_data is None:
            metrics = dict.fromkeys(task.metric_names, math.nan)
        else:
            model.eval()
            with torch.no_grad():
                metrics = task.validate(model, val_data, runtime)
        row = {
            "epoch": epoch,
            "train_loss": (train_loss[0] / train_loss[1].clamp(min=1)).item(),
            **metrics,
            **logged_values(optimizer, scheduler, epoch),
            "seconds": time.perf_counter() - started,
            "train_seconds": train_seconds,
        }
        result.history.append(row)
        bar.set_postfix(epoch=epoch, loss=f"{row['train_loss']:.3f}", **{k: f"{v:.3f}" for k, v in metrics.items()})
        if val_data is None:
            result.best_epoch = epoch  # nothing to select on: the last epoch is the model
        elif better(row[task.monitor], best_value):
            best_value, result.best_epoch = row[task.monitor], epoch
            best_state = copy.deepcopy(model.state_dict())
        if epoch - result.best_epoch >= config.patience:
            result.stopped_early = True
        if checkpoint_dir is not None:
            rng_states = distributed.all_gather_object(_rng_state(device))  # every rank's, for an exact resume
            if is_main:
                _save_checkpoint(
                    checkpoint_dir,
                    model,
                    optimizer,
                    scheduler,
                    rng_states,
                    generator,
                    result,
                    best_value,
                    best_state,
                    epoch,
                )
        if on_epoch is not None and is_main:
            on_epoch(dict(row))
        if result.stopped_early:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


def _weighted_sum(losses: list[torch.Tensor], weights: list, device: torch.device) -> torch.Tensor:
    """(sum of loss x weight, sum of weights) over an epoch's steps, as one 2-vector on ``device``: the products
    in float32 on the device, then summed in step order in float32 (the very sums a per-step accumulator gives;
    the epoch has ended, so reading them on the host costs no overlap)."""
    if not losses:
        return torch.zeros(2, device=device)
    if all(isinstance(w, (int, float)) for w in weights):
        w = torch.tensor(weights, dtype=torch.float32).to(device, non_blocking=True)
    else:
        w = torch.stack([torch.as_tensor(v, device=device).float() for v in weights])
    terms = torch.stack([torch.stack(losses).float() * w, w]).cpu().numpy()
    sums = np.add.accumulate(np.concatenate([np.zeros((2, 1), np.float32), terms], axis=1), axis=1)[:, -1]
    return torch.from_numpy(np.ascontiguousarray(sums)).to(device)  # contiguous: all_reduce writes it in place


def _check_finite(epoch: int, loss: torch.Tensor, model: nn.Module) -> None:
    """Raise TrainingDiverged when the epoch's loss or the weights it left are NaN or infinite (one host sync);
    every rank sees the same all-reduced loss, so under torchrun all of them raise together."""
    weights = [p.detach().isfinite().all() for p in model.parameters() if p.is_floating_point()]
    finite = torch.stack([loss.isfinite(), *weights]).all() if weights else loss.isfinite()
    if not finite.item():
        value = loss.item()
        raise TrainingDiverged(epoch, value, "loss" if not math.isfinite(value) else "weights not finite, loss")


def _shared_loss(loss, weight, elements, world: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's loss rescaled by its share of the step's loss elements, and the ranks' mean step weight.

    With ``n`` of the step's ``N`` elements on this rank, ``loss * n * world / N`` averaged over the ranks (what
    DDP does to gradients) is the mean loss over all ``N``; the mean weight makes the all-reduced epoch loss
    the single-process one whether the weight is a count of the rank's elements or 1 a step.
    """
    local = torch.stack([torch.as_tensor(elements, device=device), torch.as_tensor(weight, device=device)]).float()
    total = distributed.all_reduce_sum(local.clone())
    return loss * (local[0] * world / total[0].clamp(min=1)), total[1] / world


def restore_finished(model: nn.Module, checkpoint_dir: Path, epochs: int, device: torch.device) -> FitResult | None:
    """What ``fit(..., resume=True)`` ends with for a run whose ``checkpoint_dir/last.pt`` says it had finished
    (all ``epochs`` done, or stopped early), without building its data or optimizer: ``model`` gets the kept
    weights, the RNG streams their state after the last epoch, and the run's result is returned. None (nothing
    loaded) when there is no such checkpoint or the run had not finished.

    For a schedule of several ``fit`` calls (components.training.transfer): a rerun skips the finished ones.
    """
    path = checkpoint_dir / "last.pt"
    if not path.exists():
        return None
    state = torch.load(path, map_location=device, weights_only=False)
    result: FitResult = state["result"]
    if state["epoch"] < epochs and not result.stopped_early:
        return None
    model.load_state_dict(state["best_state"] if state["best_state"] is not None else state["model"])
    _set_rng_state(state, distributed.rank_and_world()[0])
    log.info("%s: the run had finished (epoch %d of %d); its weights are restored", path, state["epoch"], epochs)
    return result


def _rng_state(device: torch.device) -> dict:
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _set_rng_state(state: dict, rank: int) -> None:
    mine = state["rng"][rank] if rank < len(state["rng"]) else state["rng"][0]
    torch.set_rng_state(mine["cpu"].cpu())
    if mine["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(mine["cuda"].cpu())


def _save_checkpoint(
    directory, model, optimizer, scheduler, rng_states, generator, result, best_value, best_state, epoch
):
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_states,
        "generator": generator.get_state(),
        "result": result,
        "best_value": best_value,
        "best_state": best_state,
    }
    # Write then rename, so an interrupted save never leaves a truncated last.pt behind.
    tmp = directory / "last.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(directory / "last.pt")
    if result.best_epoch == epoch and best_state is not None:
        torch.save(best_state, directory / "best.pt")


class _NoBar:
    def update(self, n=1): ...
    def set_postfix(self, **kw): ...
    def close(self): ...


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the GPU image may lack tqdm; training must not
        return _NoBar()
    # disable=None hides the bar when stderr is not a terminal (CI, dvc logs).
    return tqdm(total=total, initial=initial, unit="step", desc="train", disable=None, leave=False)


@torch.no_grad()
def predict_logits(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = True) -> torch.Tensor:
    model.eval().to(device)
    outs = []
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
        for batch in loader:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            outs.append(model(x.to(device, non_blocking=True)).float())
    return torch.cat(outs).cpu()
