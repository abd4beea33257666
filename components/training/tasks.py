"""What differs between one kind of training and another, for the one loop in ``components.training.loop``.

A task says how the epoch's batches are drawn (and augmented), the training loss of a batch, the validation
metrics of the epoch, and which of them early stopping monitors, in which direction: the loop keeps the
weights of the best epoch by that metric.

    fit(net, ClassificationTask(), train_set, val_set, settings.train, device)          # cross-entropy, val_loss
    fit(yolo, DetectionTask(val_truth, classes, decode, weights, flip=True), ...)      # val mAP@0.5, max
    fit(transformer, Seq2SeqTask(pad_id), pairs_train, pairs_val, ...)                  # teacher forcing
    fit(lstm, TokenLMTask(pad_id, window=128), seqs_train, seqs_val, ...)              # truncated BPTT
    fit(cnn, KeypointTask(mirror), (X_train, Y_train), (X_val, Y_val), ...)             # masked MSE, RMSE px

Classification reads a torch ``Dataset`` (or a batch dataset) through a sampler that every rank shards;
the others draw whole global batches from the loop's data-order generator (checkpointed with the run, so a
resumed run reads the same batches), and under torchrun rank r of N keeps rows r::N of each batch.
A task's ``loss`` returns the batch's mean loss and its weight in the epoch's train loss (a count, or a 0-d
tensor: never a host number, so a step never syncs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Literal, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from components.models.keypoint_cnn import flip_horizontally as flip_keypoints
from components.models.keypoint_cnn import masked_mse, to_unit
from components.models.yolo import TinyYOLO
from components.training import distributed
from components.training.detection import BoxBatches, DecodeConfig, batch_loss, validation_map
from components.training.detection import flip_horizontally as flip_boxes
from components.training.device_data import BatchLoader, ImageTensorDataset, TensorBatches
from components.training.keypoints import as_input, masked_rmse, predict_pixels
from components.training.loop import Runtime
from components.training.seq2seq import EncodedPairs, sequence_loss, teacher_forced_metrics
from components.training.seq2seq import batches as pair_batches
from components.training.token_lm import batches as id_batches
from components.training.token_lm import mean_loss, windows


class Batches(Protocol):
    def __len__(self) -> int: ...  # steps per epoch
    def __iter__(self) -> Iterator: ...  # sequences of tensors, batch dimension first
    def set_epoch(self, epoch: int) -> None: ...


class Task(Protocol):
    monitor: str  # a key of validate()'s dict
    mode: Literal["min", "max"]
    metric_names: tuple[str, ...]  # validate()'s keys (NaN in the history when there is no validation set)

    def train_batches(
        self, dataset, batch_size: int, runtime: Runtime, *, seed: int, generator: torch.Generator
    ) -> Batches: ...
    def validation_data(self, dataset, batch_size: int, runtime: Runtime): ...
    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, int | torch.Tensor]: ...
    def validate(self, model: nn.Module, data, runtime: Runtime) -> dict[str, float]: ...

    # Optional, for a loss that is a mean over elements whose number differs between the ranks' shards of a
    # step: ``loss_elements(batch) -> 0-d tensor`` counts them, and under DDP fit weighs each rank's loss by its
    # share (Seq2SeqTask, TokenLMTask: real target tokens). Without it the ranks' losses count equally.


class SampledBatches:
    """A loader over a sampler that wants to know the epoch (it shuffles with seed + epoch)."""

    def __init__(self, loader, sampler: DistributedSampler):
        self.loader, self.sampler = loader, sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)  # the loader's own iterator: no extra Python frame per step

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)


class DrawnBatches:
    """Global batches a task draws itself; rank r of N keeps rows r::N of each (all ranks draw the same)."""

    def __init__(self, draw: Callable[[], Iterator[tuple]], steps: int, runtime: Runtime):
        self.draw, self.steps, self.rank, self.world = draw, steps, runtime.rank, runtime.world

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for batch in self.draw():
            yield batch if self.world == 1 else tuple(t[self.rank :: self.world] for t in batch)

    def set_epoch(self, epoch: int) -> None:
        pass  # the data-order generator moves on by itself


def _loader(dataset, batch_size: int, sampler, train: bool, drop_last: bool, runtime: Runtime):
    if hasattr(dataset, "get_batch"):  # a batch dataset: gathers and augments whole batches on the device
        return BatchLoader(dataset, batch_size, sampler, train=train, drop_last=drop_last)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=runtime.num_workers,
        pin_memory=runtime.device.type == "cuda",
        drop_last=drop_last,
    )


def _batch_dataset(dataset):
    """A ``TensorDataset`` as batches gathered whole (same batches, same order); other datasets as they are."""
    return TensorBatches(*dataset.tensors) if type(dataset) is TensorDataset else dataset


def _on_device(dataset, runtime: Runtime):
    """A batch dataset moved to the run's device; images kept there are stored in the model's memory format."""
    if isinstance(dataset, ImageTensorDataset):
        return dataset.to(runtime.device, memory_format=runtime.memory_format)
    return dataset.to(runtime.device)


class ClassificationTask:
    """One class label per example (or per element: a step of a sequence, a pixel of a mask): the loss
    (cross-entropy by default) on float32 logits, validation loss and accuracy; monitors val_loss.

    ``accuracy_name`` names the accuracy, counted per label element; ``extra_metrics(model)`` adds metrics
    of the epoch's model to the row (e.g. exact match of whole greedy translations; computed on every rank).
    ``ignore_index``: a target value that is padding (cross-entropy's -100), left out of the accuracy's count."""

    monitor, mode = "val_loss", "min"

    def __init__(
        self,
        loss_fn: Callable = F.cross_entropy,
        accuracy_name: str = "val_accuracy",
        extra_metrics: Callable[[nn.Module], dict[str, float]] | None = None,
        ignore_index: int | None = None,
    ):
        self.loss_fn, self.accuracy_name, self.extra_metrics = loss_fn, accuracy_name, extra_metrics
        self.ignore_index = ignore_index
        self.metric_names = ("val_loss", accuracy_name)

    def train_batches(self, dataset, batch_size, runtime, *, seed, generator):
        dataset = _batch_dataset(dataset)
        if hasattr(dataset, "get_batch"):
            dataset = _on_device(dataset, runtime)  # on the GPU when it fits, else pinned host memory
        # The same sampler with one replica or N: rank r of N reads every N-th index of the one shuffled order,
        # so the N shards of a step together hold exactly the samples a single process reads in that step.
        sampler = DistributedSampler(dataset, num_replicas=runtime.world, rank=runtime.rank, shuffle=True, seed=seed)
        loader = _loader(
            dataset,
            batch_size // runtime.world,
            sampler,
            train=True,
            drop_last=len(dataset) > batch_size,
            runtime=runtime,
        )
        return SampledBatches(loader, sampler)

    def validation_data(self, dataset, batch_size, runtime):
        dataset = _batch_dataset(dataset)
        if hasattr(dataset, "get_batch"):
            dataset = _on_device(dataset, runtime)
        return _loader(
            dataset,
            batch_size,
            range(runtime.rank, len(dataset), runtime.world),
            train=False,
            drop_last=False,
            runtime=runtime,
        )

    def loss(self, model, batch):
        x, y = batch
        return self.loss_fn(model(x).float(), y), len(y)

    def validate(self, model, data, runtime):
        device = runtime.device
        loss_sum, correct, count, elements = (torch.zeros((), device=device) for _ in range(4))
        with runtime.autocast():
            for x, y in data:
                x, y = (
                    x.to(device, non_blocking=True, memory_format=runtime.memory_format)
                    if x.ndim == 4
                    else x.to(device, non_blocking=True),
                    y.to(device, non_blocking=True),
                )
                logits = model(x)
                loss_sum += self.loss_fn(logits.float(), y) * len(y)
                correct += (logits.argmax(1) == y).sum()
                count += len(y)
                elements += y.numel() if self.ignore_index is None else (y != self.ignore_index).sum()
        sums = distributed.all_reduce_sum(torch.stack([loss_sum, correct, count, elements]))
        metrics = {
            "val_loss": (sums[0] / sums[2].clamp(min=1)).item(),
            self.accuracy_name: (sums[1] / sums[3].clamp(min=1)).item(),
        }
        if self.extra_metrics is not None:
            metrics |= self.extra_metrics(model)
        return metrics


class SegmentationTask(ClassificationTask):
    """Per-pixel classification of masks (logits (B, C, H, W), targets (B, H, W)): pixel accuracy."""

    def __init__(self, loss_fn: Callable = F.cross_entropy):
        super().__init__(loss_fn, accuracy_name="val_pixel_accuracy")


class DetectionTask:
    """YOLO on padded box batches: optional flips that move the boxes, the YOLO loss (drops the ragged last
    batch: BatchNorm dislikes tiny ones), validation loss and mAP@0.5, which it monitors (max)."""

    monitor, mode, metric_names = "val_map50", "max", ("val_loss", "val_map50")

    def __init__(
        self, val_truth: list[np.ndarray], classes, decode_config: DecodeConfig, loss_weights: dict, flip: bool
    ):
        self.val_truth, self.classes, self.decode_config = val_truth, classes, decode_config
        self.loss_weights, self.flip = loss_weights, flip

    def train_batches(self, data: BoxBatches, batch_size, runtime, *, seed, generator):
        steps = max(1, len(data) // batch_size)

        def draw():
            order = torch.randperm(len(data), generator=generator)
            for step in range(steps):
                idx = order[step * batch_size : (step + 1) * batch_size]
                images, boxes = data.images[idx], data.boxes[idx]
                if self.flip:
                    images, boxes = flip_boxes(images, boxes, torch.rand(len(idx), generator=generator) < 0.5)
                yield images, boxes

        return DrawnBatches(draw, steps, runtime)

    def validation_data(self, data: BoxBatches, batch_size, runtime):
        return data

    def loss(self, model: TinyYOLO, batch):
        images, boxes = batch
        return batch_loss(model, images, boxes, self.loss_weights), 1

    def validate(self, model, data: BoxBatches, runtime):
        device = runtime.device
        losses = [
            batch_loss(
                model, data.images[s : s + 128].to(device), data.boxes[s : s + 128].to(device), self.loss_weights
            ).item()
            for s in range(0, len(data), 128)
        ]
        return {
            "val_loss": float(np.mean(losses)),
            "val_map50": validation_map(model, data, self.val_truth, self.classes, self.decode_config),
        }


class Seq2SeqTask:
    """Teacher forcing on padded (source, <bos> target <eos>) pairs: the pad-ignoring cross-entropy of each
    next target token; validation loss per token and token accuracy (monitors val_loss), and with
    ``exact_match(model)`` the share of whole greedy translations that are right."""

    monitor, mode = "val_loss", "min"

    def __init__(
        self, pad_id: int, label_smoothing: float = 0.0, exact_match: Callable[[nn.Module], float] | None = None
    ):
        self.pad_id, self.label_smoothing, self.exact_match = pad_id, label_smoothing, exact_match
        self.metric_names = ("val_loss", "val_token_accuracy") + (("val_exact_match",) if exact_match else ())

    def train_batches(self, data: EncodedPairs, batch_size, runtime, *, seed, generator):
        return DrawnBatches(
            lambda: pair_batches(data, batch_size, generator, trim=not runtime.static_shapes),
            math.ceil(len(data) / batch_size),
            runtime,
        )

    def validation_data(self, data: EncodedPairs, batch_size, runtime):
        return data

    def loss(self, model, batch):
        src, tgt = batch
        return sequence_loss(model(src, tgt[:, :-1]), tgt[:, 1:], self.pad_id, self.label_smoothing), 1

    def loss_elements(self, batch) -> torch.Tensor:
        """The real target tokens the loss averages over (under DDP, fit weighs each rank's loss by them)."""
        return (batch[1][:, 1:] != self.pad_id).sum()

    def validate(self, model, data: EncodedPairs, runtime):
        with runtime.autocast():
            forced = teacher_forced_metrics(model, data, runtime.device, self.pad_id)
        metrics = {"val_loss": forced["loss"], "val_token_accuracy": forced["token_accuracy"]}
        if self.exact_match is not None:
            metrics["val_exact_match"] = self.exact_match(model)
        return metrics


class TokenLMTask:
    """Next-token language modelling of id sequences: trains on windows of at most ``window`` targets
    (truncated backpropagation), weighted by their real tokens; validates whole sequences, loss per token."""

    monitor, mode, metric_names = "val_loss", "min", ("val_loss",)

    def __init__(self, pad_id: int, window: int):
        self.pad_id, self.window = pad_id, window

    def train_batches(self, seqs: list[list[int]], batch_size, runtime, *, seed, generator):
        rows = windows(seqs, self.window)
        return DrawnBatches(
            lambda: ((ids,) for ids in id_batches(rows, batch_size, self.pad_id, generator)),
            math.ceil(len(rows) / batch_size),
            runtime,
        )

    def validation_data(self, seqs, batch_size, runtime):
        return seqs

    def loss(self, model, batch):
        (ids,) = batch
        logits, _ = model(ids[:, :-1])
        targets = ids[:, 1:]
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=self.pad_id)
        return loss, (targets != self.pad_id).sum()

    def loss_elements(self, batch) -> torch.Tensor:
        """The real target tokens the loss averages over (under DDP, fit weighs each rank's loss by them)."""
        return (batch[0][:, 1:] != self.pad_id).sum()

    def validate(self, model, seqs, runtime):
        return {"val_loss": mean_loss(model, seqs, runtime.device, self.pad_id)}


class KeypointTask:
    """Keypoint regression on (images uint8 (N, 96, 96), pixel coordinates (N, 2K), NaN = missing): masked MSE
    in unit coordinates; with ``flip`` half of each batch mirrored (image flipped, keypoints mirrored and
    swapped with their partners, ``mirror[k]``); validation MSE and RMSE in pixels, which it monitors."""

    monitor, mode, metric_names = "val_rmse", "min", ("val_loss", "val_rmse")

    def __init__(self, mirror: np.ndarray, flip: bool = True):
        self.mirror, self.flip = torch.as_tensor(mirror), flip

    def train_batches(self, data: tuple[np.ndarray, np.ndarray], batch_size, runtime, *, seed, generator):
        X, Y = as_input(data[0]), torch.as_tensor(data[1], dtype=torch.float32)
        steps = max(1, len(X) // batch_size)

        def draw():
            # tensor_split spreads the remainder over the batches, so no image sits an epoch out
            for idx in torch.tensor_split(torch.randperm(len(X), generator=generator), steps):
                x, y = X[idx], Y[idx]
                if self.flip:
                    flip = torch.rand(len(idx), generator=generator) < 0.5
                    x[flip], y[flip] = flip_keypoints(x[flip], y[flip], self.mirror, width=x.shape[-1])
                yield x, to_unit(y)

        return DrawnBatches(draw, steps, runtime)

    def validation_data(self, data, batch_size, runtime):
        return data

    def loss(self, model, batch):
        x, y = batch
        return masked_mse(model(x).float(), y), 1

    def validate(self, model, data, runtime):
        X, Y = data
        predicted = predict_pixels(model, X, runtime.device)
        return {"val_loss": float(np.nanmean(((predicted - Y) / 48) ** 2)), "val_rmse": masked_rmse(predicted, Y)}
