"""The training loop: one readable function, torch only.

    history = fit(model, train_set, val_set, TrainConfig(epochs=10), device=resolve_device("auto"))

AdamW, a per-step LR schedule, gradient clipping, bf16 autocast on CUDA, early stopping on the validation
loss, a checkpoint every epoch (``last.pt``) and of the best epoch (``best.pt``), and resuming from
``last.pt``. Loss sums stay on the device so a step never waits for the host.
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
from torch.utils.data import DataLoader, Dataset


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    patience: int = 5
    amp: bool = True
    num_workers: int = 0


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float


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
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total, pct_start=0.25)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)


def evaluate_loss(model: nn.Module, loader: DataLoader, loss_fn, device: torch.device, amp: bool) -> tuple[float, float]:
    """Mean loss and accuracy over a loader; one host sync at the end."""
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    count = 0
    with torch.no_grad(), _autocast(device, amp):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            loss_sum += loss_fn(logits.float(), y) * len(y)
            correct += (logits.argmax(1) == y).sum()
            count += len(y)
    return (loss_sum / max(count, 1)).item(), (correct.float() / max(count, 1)).item()


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


def fit(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    config: TrainConfig,
    device: torch.device,
    *,
    seed: int = 0,
    loss_fn: Callable = nn.functional.cross_entropy,
    on_epoch: Callable[[EpochResult], None] | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch."""
    torch.manual_seed(seed)
    model.to(device)
    generator = torch.Generator().manual_seed(seed)
    pin = device.type == "cuda"
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=generator,
                              num_workers=config.num_workers, pin_memory=pin, drop_last=len(train_set) > config.batch_size)
    val_loader = DataLoader(val_set, batch_size=config.batch_size * 2, num_workers=config.num_workers, pin_memory=pin)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config, len(train_loader))

    result = FitResult()
    best_loss, best_state, start_epoch = math.inf, None, 1
    if resume and checkpoint_dir is not None and (checkpoint_dir / "last.pt").exists():
        state = torch.load(checkpoint_dir / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        result = state["result"]
        best_loss, best_state, start_epoch = state["best_loss"], state["best_state"], state["epoch"] + 1

    bar = _progress(total=config.epochs * len(train_loader), initial=(start_epoch - 1) * len(train_loader),
                    enabled=progress)
    for epoch in range(start_epoch, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        seen = 0
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with _autocast(device, config.amp):
                loss = loss_fn(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
            seen += len(y)
            bar.update(1)
        val_loss, val_acc = evaluate_loss(model, val_loader, loss_fn, device, config.amp)
        stats = EpochResult(epoch, (loss_sum / max(seen, 1)).item(), val_loss, val_acc,
                            optimizer.param_groups[0]["lr"], time.perf_counter() - started)
        result.history.append(stats)
        bar.set_postfix(epoch=epoch, loss=f"{stats.train_loss:.3f}", val_loss=f"{val_loss:.3f}", val_acc=f"{val_acc:.3f}")
        if val_loss < best_loss:
            best_loss, result.best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        if checkpoint_dir is not None:
            _save_checkpoint(checkpoint_dir, model, optimizer, scheduler, generator, result, best_loss, best_state, epoch)
        if on_epoch is not None:
            on_epoch(stats)
        if epoch - result.best_epoch >= config.patience:
            result.stopped_early = True
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


def _save_checkpoint(directory, model, optimizer, scheduler, generator, result, best_loss, best_state, epoch):
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
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
