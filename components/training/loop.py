"""The training loop: one readable function, torch only, the same on CPU, one GPU or several.

    history = fit(model, train_set, val_set, TrainConfig(epochs=10), device=resolve_device("auto"))

AdamW (or SGD), a per-step LR schedule, gradient clipping, bf16 autocast on CUDA, early stopping on the
validation loss, a checkpoint every epoch (``last.pt``) and of the best epoch (``best.pt``), and resuming from
``last.pt``. Loss sums stay on the device, so a step never waits for the host: the only host syncs are at the
end of an epoch.

On a GPU: channels_last memory for CNNs, fused optimizers, cuDNN autotuning, optional ``torch.compile``
(``TrainConfig(compile=True)``), pinned memory and non-blocking copies. A batch dataset
(``components.training.device_data.ImageTensorDataset``) is kept on the GPU when it fits and augmented there a whole
batch at a time; any other ``Dataset`` goes through a ``DataLoader``.

Several GPUs: launch the same program once per GPU with torchrun; ``fit`` sees the process group and trains
with DistributedDataParallel (each rank reads its own shard of every global batch; logging, ``on_epoch`` and
checkpoints on rank 0 only). ``TrainConfig.batch_size`` is the GLOBAL batch, split evenly over the ranks, so
one config trains the same model on 1 or N GPUs:

    python benchmarks/train_throughput.py fit --data-dir .bench-data/fashion-mnist                 # 1 GPU
    torchrun --standalone --nproc_per_node=2 benchmarks/train_throughput.py fit --data-dir ...   # 2 GPUs

and in a program of your own:

    ctx = distributed.init_from_env()        # joins torchrun's process group; rank 0 of 1 in a plain run
    fit(model, train_set, val_set, config, ctx.device)
    distributed.cleanup()
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from components.training import distributed
from components.training.device_data import BatchLoader


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32  # the global batch: under torchrun each of N ranks takes batch_size / N
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    patience: int = 5
    amp: bool = True  # bf16 autocast on CUDA
    num_workers: int = 0
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = 0.9  # SGD only
    channels_last: bool | None = None  # None: on CUDA for models with 2-D convolutions
    compile: bool = False  # torch.compile the training model (the first epoch pays the compile time)
    amp_on_cpu: bool = False  # bf16 autocast on the CPU too (for tests, and CPUs with bf16 units)


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float
    train_seconds: float = 0.0  # the training steps alone, without validation


@dataclass
class FitResult:
    history: list[EpochResult] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    def as_rows(self) -> list[dict]:
        return [asdict(e) for e in self.history]


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False")
    return torch.device(name)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    total = max(1, config.epochs * steps_per_epoch)
    # OneCycle's warm-up phase needs at least one step of its own: with pct_start=0.25 a run of under 8
    # steps (a tiny dataset, an active-learning round) divides by zero, so such runs anneal with cosine.
    if config.schedule == "onecycle" and total >= 8:
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total, pct_start=0.25)
    if config.schedule in ("cosine", "onecycle"):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # Fused kernels update all parameters in a few launches instead of several per tensor.
    fused = device.type == "cuda"
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, fused=fused)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)


def evaluate_loss(model: nn.Module, loader, loss_fn, device: torch.device, amp: bool) -> tuple[float, float]:
    """Mean loss and accuracy over a loader; one host sync at the end."""
    loss_sum, correct, count = _evaluate_sums(model, loader, loss_fn, device, amp)
    return (loss_sum / count.clamp(min=1)).item(), (correct / count.clamp(min=1)).item()


def _evaluate_sums(model, loader, loss_fn, device, amp, amp_on_cpu=False, memory_format=torch.contiguous_format):
    """(loss sum, correct, count) as float tensors on the device, ready to be summed over ranks."""
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    count = torch.zeros((), device=device)
    with torch.no_grad(), _autocast(device, amp, amp_on_cpu):
        for x, y in loader:
            x, y = _to_device(x, device, memory_format), y.to(device, non_blocking=True)
            logits = model(x)
            loss_sum += loss_fn(logits.float(), y) * len(y)
            correct += (logits.argmax(1) == y).sum()
            count += len(y)
    return loss_sum, correct, count


def _autocast(device: torch.device, amp: bool, on_cpu: bool = False):
    enabled = amp and (device.type == "cuda" or on_cpu)
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def _to_device(x: torch.Tensor, device: torch.device, memory_format) -> torch.Tensor:
    if x.ndim == 4 and memory_format is torch.channels_last:
        return x.to(device, non_blocking=True, memory_format=memory_format)
    return x.to(device, non_blocking=True)


def _has_conv2d(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def _make_loader(dataset, batch_size: int, sampler, train: bool, drop_last: bool, device, num_workers: int):
    if hasattr(dataset, "get_batch"):  # a batch dataset: gathers and augments whole batches on the device
        return BatchLoader(dataset, batch_size, sampler, train=train, drop_last=drop_last)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=device.type == "cuda", drop_last=drop_last)


def fit(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    config: TrainConfig,
    device: torch.device,
    *,
    seed: int = 0,
    loss_fn: Callable = nn.functional.cross_entropy,
    on_epoch: Callable[[EpochResult], None] | None = None,
    before_validation: Callable[[nn.Module], None] | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch.

    With ``val_set=None`` it trains every epoch on everything it is given and keeps the last weights: no
    early stopping, no selection (what an active-learning round with a handful of labels needs).

    ``before_validation(model)`` runs after each epoch's steps, before the model is evaluated and its weights
    kept: e.g. to recompute BatchNorm statistics that lag behind a from-scratch network's weights.

    Under torchrun every rank calls ``fit`` with the same arguments; ``on_epoch`` runs on rank 0 only and
    every rank returns the same history (losses and accuracies are summed over ranks).
    """
    rank, world = distributed.rank_and_world()
    is_main = rank == 0
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} (global) does not split evenly over {world} processes")
    local_batch = config.batch_size // world
    # Each rank its own stream for dropout and augmentation; DDP copies rank 0's initial weights to all.
    torch.manual_seed(seed + rank)

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest convolution kernels once
        torch.set_float32_matmul_precision("high")  # TF32 for whatever autocast leaves in float32
    use_channels_last = config.channels_last if config.channels_last is not None else (
        device.type == "cuda" and _has_conv2d(model))
    memory_format = torch.channels_last if use_channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    if hasattr(train_set, "get_batch"):
        train_set = train_set.to(device)  # on the GPU when it fits, else pinned host memory
    if val_set is not None and hasattr(val_set, "get_batch"):
        val_set = val_set.to(device)

    train_model = model
    if world > 1:
        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        train_model = torch.compile(train_model)

    # The same sampler with one replica or N: rank r of N reads every N-th index of the one shuffled order,
    # so the N shards of a step together hold exactly the samples a single process reads in that step.
    train_sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    train_loader = _make_loader(train_set, local_batch, train_sampler, train=True,
                                drop_last=len(train_set) > config.batch_size, device=device,
                                num_workers=config.num_workers)
    val_loader = None if val_set is None else _make_loader(
        val_set, local_batch * 2, range(rank, len(val_set), world), train=False, drop_last=False, device=device,
        num_workers=config.num_workers)
    optimizer = make_optimizer(model, config, device)
    scheduler = make_scheduler(optimizer, config, len(train_loader))

    result = FitResult()
    best_loss, best_state, start_epoch = math.inf, None, 1
    if resume and checkpoint_dir is not None and (checkpoint_dir / "last.pt").exists():
        state = torch.load(checkpoint_dir / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state, rank)
        result = state["result"]
        best_loss, best_state, start_epoch = state["best_loss"], state["best_state"], state["epoch"] + 1

    bar = _progress(total=config.epochs * len(train_loader), initial=(start_epoch - 1) * len(train_loader),
                    enabled=progress and is_main)
    for epoch in range(start_epoch, config.epochs + 1):
        started = time.perf_counter()
        train_sampler.set_epoch(epoch)
        model.train()
        loss_sum = torch.zeros((), device=device)
        seen = torch.zeros((), device=device)
        for x, y in train_loader:
            x, y = _to_device(x, device, memory_format), y.to(device, non_blocking=True)
            with _autocast(device, config.amp, config.amp_on_cpu):
                loss = loss_fn(train_model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)  # returns a tensor: no sync
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
            seen += len(y)
            bar.update(1)  # counts steps only; the loss is shown once per epoch, so the bar never syncs
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - started
        if before_validation is not None:
            before_validation(model)
        val_sums = (torch.full((3,), math.nan, device=device) if val_loader is None else
                    _evaluate_sums(model, val_loader, loss_fn, device, config.amp, config.amp_on_cpu, memory_format))
        sums = distributed.all_reduce_sum(torch.stack([loss_sum, seen, *val_sums]))
        train_loss, val_loss, val_acc = (sums[0] / sums[1].clamp(min=1), sums[2] / sums[4].clamp(min=1),
                                         sums[3] / sums[4].clamp(min=1))
        stats = EpochResult(epoch, train_loss.item(), val_loss.item(), val_acc.item(),
                            optimizer.param_groups[0]["lr"], time.perf_counter() - started, train_seconds)
        result.history.append(stats)
        bar.set_postfix(epoch=epoch, loss=f"{stats.train_loss:.3f}", val_loss=f"{stats.val_loss:.3f}",
                        val_acc=f"{stats.val_accuracy:.3f}")
        if val_loader is None:
            result.best_epoch = epoch  # nothing to select on: the last epoch is the model
        elif stats.val_loss < best_loss:
            best_loss, result.best_epoch = stats.val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        if checkpoint_dir is not None:
            rng_states = distributed.all_gather_object(_rng_state(device))  # every rank's, for an exact resume
            if is_main:
                _save_checkpoint(checkpoint_dir, model, optimizer, scheduler, rng_states, result, best_loss,
                                 best_state, epoch)
        if on_epoch is not None and is_main:
            on_epoch(stats)
        if epoch - result.best_epoch >= config.patience:
            result.stopped_early = True
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


def _rng_state(device: torch.device) -> dict:
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _set_rng_state(state: dict, rank: int) -> None:
    if "rng" not in state:  # a checkpoint written before DDP support: one CPU stream
        torch.set_rng_state(state["torch_rng"])
        return
    mine = state["rng"][rank] if rank < len(state["rng"]) else state["rng"][0]
    torch.set_rng_state(mine["cpu"].cpu())
    if mine["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(mine["cuda"].cpu())


def _save_checkpoint(directory, model, optimizer, scheduler, rng_states, result, best_loss, best_state, epoch):
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "rng": rng_states, "torch_rng": rng_states[0]["cpu"],
        "result": result, "best_loss": best_loss, "best_state": best_state,
    }
    # Write then rename, so an interrupted save never leaves a truncated last.pt behind.
    tmp = directory / "last.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(directory / "last.pt")
    if result.best_epoch == epoch:
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
    with _autocast(device, amp):
        for batch in loader:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            outs.append(model(x.to(device, non_blocking=True)).float())
    return torch.cat(outs).cpu()
