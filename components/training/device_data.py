"""Batch datasets: whole batches gathered by index and augmented with a few batched kernels on the device.

The per-item path (a torch ``Dataset`` read through a ``DataLoader``) transforms one image at a time on the
host; for MNIST-sized data on a GPU that costs more than the model. A batch dataset instead holds all images
as one uint8 tensor (N, C, H, W), on the GPU when it fits and in pinned host memory otherwise, and hands the
trainer a batch per call:

    train = ImageTensorDataset(images_nhwc_uint8, labels, augment=BatchAugment(flip=True, translate=0.1))
    val = ImageTensorDataset(val_images_nhwc_uint8, val_labels)
    fit(model, train, val, config, device)      # fit() moves both to the device and reads whole batches

``fit`` recognises a batch dataset by its ``get_batch(indices, train)`` method, so other sources (JPEG bytes
decoded on the GPU, say) plug in the same way. Random augmentation parameters are drawn on the device, so a
batch never waits for the host.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _register_stats(module: nn.Module, mean, std) -> None:
    """mean and std (1, C, 1, 1), and (x / 255 - mean) / std for uint8 x as x * scale + shift, as buffers."""
    module.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
    module.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
    module.register_buffer("shift", -module.mean / module.std, persistent=False)
    module.register_buffer("scale", 1 / (255 * module.std), persistent=False)


class BatchAugment(nn.Module):
    """Per-sample random crop/zoom, rotation, shift and horizontal flip as ONE affine ``grid_sample``, then
    brightness and contrast jitter, then normalisation. uint8 (B, C, H, W) in, float32 out.

    ``crop_scale=(a, b)``: each sample sees a square window of side a..b times the image side, anywhere
    inside the image (the zoom of a random-resized crop, without its aspect-ratio change), resampled to
    ``output_size``. ``translate``: an extra shift of up to that fraction of the side. ``degrees``: rotation.
    """

    def __init__(
        self,
        output_size: int | None = None,
        flip: bool = True,
        degrees: float = 0.0,
        translate: float = 0.0,
        crop_scale: tuple[float, float] = (1.0, 1.0),
        brightness: float = 0.0,
        contrast: float = 0.0,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    ):
        super().__init__()
        self.output_size, self.flip, self.degrees, self.translate = output_size, flip, degrees, translate
        self.crop_scale, self.brightness, self.contrast = crop_scale, brightness, contrast
        _register_stats(self, mean, std)
        # (x - mean) / std for x in [0, 1] (after colour jitter) as x * scale_unit + shift_unit
        self.register_buffer("scale_unit", 1 / self.std, persistent=False)
        self.register_buffer("shift_unit", -self.mean / self.std, persistent=False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # A few batched kernels, each over the whole batch: one draw of every random parameter, the sampling grid
        # written directly (no affine_grid base grid), normalisation folded into one addcmul. On a small model
        # the step is launch-bound, so the number of kernels is the cost (benchmarks/RESULTS.md).
        b, c, h, w = images.shape
        out_h, out_w = (self.output_size, self.output_size) if self.output_size else (h, w)
        dev = images.device
        low, span = self._draws(dev)
        # Columns: crop scale, angle (radians), flip draw, x shift, y shift, brightness, contrast.
        p = torch.addcmul(low, torch.rand(b, 7, device=dev), span)
        s = p[:, 0:1]
        # grid_sample's grid maps output pixel centres (in [-1, 1]) to input coordinates: in = A @ out + t.
        if self.degrees:
            a11, a10 = torch.cos(p[:, 1:2]) * s, torch.sin(p[:, 1:2]) * s
        else:
            a11, a10 = s, None
        a00 = torch.where(p[:, 2:3] < 0.5, -a11, a11) if self.flip else a11
        # the shifts: how far the window's centre may move and stay (mostly) inside, (b, 2)
        t = p[:, 3:5] * ((1 + 2 * self.translate) - s)
        xs, ys = self._base(out_h, out_w, dev)
        b3 = (b, 1, 1)
        gx = torch.addcmul(t[:, 0].view(b3), a00.view(b3), xs)  # (b, 1, W)
        gy = torch.addcmul(t[:, 1].view(b3), a11.view(b3), ys)  # (b, H, 1)
        if a10 is not None:
            a01 = -a10
            a10 = torch.where(p[:, 2:3] < 0.5, -a10, a10) if self.flip else a10
            gx = torch.addcmul(gx, a01.view(b3), ys)  # (b, H, W)
            gy = torch.addcmul(gy, a10.view(b3), xs)
        grid = torch.stack([gx.expand(b, out_h, out_w), gy.expand(b, out_h, out_w)], dim=-1)
        x = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)

        if not (self.brightness or self.contrast):  # (x / 255 - mean) / std in one kernel
            return torch.addcmul(self.shift, x, self.scale)
        x = x.mul_(1 / 255)
        if self.brightness:
            x = x.mul_(p[:, 5].view(b, 1, 1, 1))
        if self.contrast:
            grey = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - grey).mul_(p[:, 6].view(b, 1, 1, 1)).add_(grey)
        x = x.clamp_(0, 1)
        return torch.addcmul(self.shift_unit, x, self.scale_unit)

    def _draws(self, device: torch.device):
        """low and span (1, 7) of the uniform draws: a parameter is low + U(0, 1) * span."""
        cache = self.__dict__.setdefault("_draw_ranges", {})
        if device not in cache:
            lo, hi = self.crop_scale
            radians, b, c = self.degrees * math.pi / 180, self.brightness, self.contrast
            low = torch.tensor([[lo, -radians, 0, -1, -1, 1 - b, 1 - c]], device=device)
            span = torch.tensor([[hi - lo, 2 * radians, 1, 2, 2, 2 * b, 2 * c]], device=device)
            cache[device] = (low, span)
        return cache[device]

    def _base(self, out_h: int, out_w: int, device: torch.device):
        """The output pixel centres in grid_sample's [-1, 1] coordinates (align_corners=False): x (1, 1, W) and
        y (1, H, 1), made once per size and device."""
        key = (out_h, out_w, device)
        cache = self.__dict__.setdefault("_bases", {})
        if key not in cache:
            xs = (torch.arange(out_w, dtype=torch.float32, device=device) * 2 + 1) / out_w - 1
            ys = (torch.arange(out_h, dtype=torch.float32, device=device) * 2 + 1) / out_h - 1
            cache[key] = (xs.view(1, 1, out_w), ys.view(1, out_h, 1))
        return cache[key]


class Normalize(nn.Module):
    """The evaluation transform: an optional centre crop to ``output_size``, uint8 -> float, normalised."""

    def __init__(self, output_size: int | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.output_size = output_size
        _register_stats(self, mean, std)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.output_size:
            h, w = images.shape[-2:]
            top, left = (h - self.output_size) // 2, (w - self.output_size) // 2
            images = images[..., top : top + self.output_size, left : left + self.output_size]
        # (x / 255 - mean) / std as one fused kernel, x * scale + shift on the uint8 input: the four separate ops
        # took a third of the trainer's per-step overhead against a plain loop (benchmarks/RESULTS.md).
        # shift and scale are buffers made once (the same values: four kernels a batch fewer).
        return torch.addcmul(self.shift, images, self.scale)


class ImageTensorDataset(torch.utils.data.Dataset):
    """uint8 images (N, H, W, C) and integer labels, served as whole batches by ``get_batch``.

    Also a plain map-style ``Dataset`` (``ds[i]`` is one evaluation-transformed image), so a ``DataLoader``
    reads it too, e.g. for prediction.
    """

    def __init__(
        self,
        images,
        labels=None,
        augment: nn.Module | None = None,
        normalize: nn.Module | None = None,
        channels_first: bool = False,
        max_device_fraction: float = 0.5,
    ):
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8:
            raise TypeError(f"ImageTensorDataset holds uint8 images, got {images.dtype}")
        if images.ndim == 3:  # (N, H, W): one grey channel
            images = images.unsqueeze(-1 if not channels_first else 1)
        self.images = images if channels_first else images.permute(0, 3, 1, 2).contiguous()
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
        channels = self.images.shape[1]
        default_stats = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.5,) * channels, (0.5,) * channels)
        self.augment = augment
        self.max_device_fraction = max_device_fraction
        self.normalize = normalize if normalize is not None else Normalize(mean=default_stats[0], std=default_stats[1])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        x = self.normalize(self.images[i : i + 1].to(self.normalize.mean.device))[0]
        return (x,) if self.labels is None else (x, self.labels[i])

    def to(
        self, device: torch.device, memory_format: torch.memory_format = torch.contiguous_format
    ) -> ImageTensorDataset:
        """A copy on ``device`` when the images take at most ``max_device_fraction`` of its free memory; otherwise
        (or for a CPU device) the images stay on the host, pinned when the device is a GPU so batch copies
        can be asynchronous. Transforms always run on ``device``.

        ``memory_format=torch.channels_last`` (what the trainer asks for a CNN on a GPU): images kept on the GPU
        are stored that way, so a gathered, normalised batch is already in the model's layout (no copy a step).
        """
        device = torch.device(device)
        out = object.__new__(ImageTensorDataset)
        out.max_device_fraction = self.max_device_fraction
        out.augment = None if self.augment is None else self.augment.to(device)
        out.normalize = self.normalize.to(device)
        images, labels = self.images, self.labels
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if images.device == device or images.nbytes <= self.max_device_fraction * free:
                images = images.to(device)
                if memory_format is torch.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                labels = None if labels is None else labels.to(device)
            elif not images.is_pinned():
                images = images.cpu().pin_memory()
        out.images, out.labels = images, labels
        return out

    def get_batch(self, indices: torch.Tensor, train: bool):
        """(x, y) on the transforms' device for ``indices`` (a tensor on ``self.images.device``)."""
        target = self.normalize.mean.device
        if self.images.device != target and target.type == "cuda":
            x = self._gather_to_gpu(indices, target)
        elif self.images.ndim == 4 and self.images.shape[1] > 1 and not self.images.is_contiguous():
            # channels_last storage: gather whole (H, W, C) rows; the permuted view is a channels_last batch
            x = self.images.permute(0, 2, 3, 1).index_select(0, indices).permute(0, 3, 1, 2).to(target)
        else:
            x = self.images.index_select(0, indices).to(target)
        transform = self.augment if (train and self.augment is not None) else self.normalize
        x = transform(x)
        if self.labels is None:
            return (x,)
        y = self.labels.index_select(0, indices).to(target, non_blocking=True)
        return x, y

    STAGING_SLOTS = 3

    def prefetch(self, indices: torch.Tensor) -> None:
        """Start gathering the batch ``indices`` (the next ``get_batch``'s) on a worker thread, for host-resident
        images bound for a GPU: the host gather of a batch (0.5 ms for 256 x 3 x 73 x 73 bytes) then overlaps
        the training step the main thread is launching. A no-op otherwise."""
        target = self.normalize.mean.device
        if self.images.device == target or target.type != "cuda":
            return
        self._wait_pending()
        slot = self._next_slot()
        self.__dict__["_pending"] = (indices, slot, _gather_pool().submit(self._fill, slot, indices))

    def _wait_pending(self):
        pending = self.__dict__.pop("_pending", None)
        if pending is not None:
            pending[2].result()
        return pending

    def _next_slot(self) -> int:
        slot = self.__dict__["_slot"] = (self.__dict__.get("_slot", -1) + 1) % self.STAGING_SLOTS
        return slot

    def _fill(self, slot: int, indices: torch.Tensor) -> torch.Tensor:
        """Gather ``indices`` into the pinned buffer of ``slot``, once the GPU has finished copying out of it."""
        staging = self.__dict__.setdefault("_staging", [None] * self.STAGING_SLOTS)
        n = len(indices)
        buffer, copied = staging[slot] if staging[slot] is not None else (None, None)
        if copied is not None:
            copied.synchronize()
        if buffer is None or buffer.shape[0] < n:
            buffer = torch.empty((n, *self.images.shape[1:]), dtype=self.images.dtype, pin_memory=True)
        torch.index_select(self.images, 0, indices, out=buffer[:n])
        staging[slot] = (buffer, None)
        return buffer[:n]

    def _gather_to_gpu(self, indices: torch.Tensor, target: torch.device) -> torch.Tensor:
        """Gather a host-resident batch into a reused pinned buffer and copy it without blocking the host.

        Pinning a fresh buffer per batch is slow (measured: it halved ResNet-50's rate on an H100), so a few
        pinned buffers take turns; a buffer is refilled only after the GPU has finished copying out of it
        (its event), which also keeps the host at most that many batches ahead of the GPU. A batch that
        ``prefetch`` announced is already gathered (or being gathered) on the worker thread.
        """
        pending = self._wait_pending()
        if pending is not None and pending[0] is indices:
            slot = pending[1]
            host = pending[2].result()
        else:
            slot = self._next_slot()
            host = self._fill(slot, indices)
        x = host.to(target, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()
        self.__dict__["_staging"][slot] = (self.__dict__["_staging"][slot][0], copied)
        return x


_POOL = None


def _gather_pool():
    """One worker thread for host-side batch gathers (torch releases the GIL inside index_select)."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlfolio-gather")
    return _POOL


class TensorBatches:
    """A ``TensorDataset`` read a whole batch at a time: each tensor indexed once with the batch's indices.

    A ``DataLoader`` reads a ``TensorDataset`` one item at a time and stacks the items, some 0.5 ms of host work a
    batch of 32 (measured on an H200 host: emojify's training spent 0.7 of its 2.2 s there while its GPU work
    took 0.2 s). The batches are the same tensors in the same order (the sampler gives the order). ``to`` a GPU
    moves the tensors there when they are small (``DEVICE_LIMIT`` bytes), so a batch is a gather on the device.
    """

    DEVICE_LIMIT = 2 << 30

    def __init__(self, *tensors: torch.Tensor):
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("TensorBatches needs tensors of one length")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    @property
    def device(self) -> torch.device:
        return self.tensors[0].device

    def to(self, device: torch.device) -> TensorBatches:
        if device.type == "cuda" and sum(t.numel() * t.element_size() for t in self.tensors) > self.DEVICE_LIMIT:
            return self  # stays on the host: each batch is gathered there and copied
        return TensorBatches(*(t.to(device) for t in self.tensors))

    def get_batch(self, indices: torch.Tensor, train: bool) -> tuple[torch.Tensor, ...]:
        return tuple(t[indices] for t in self.tensors)


class BatchLoader:
    """Iterates a batch dataset in the order a sampler gives, ``batch_size`` indices at a time."""

    def __init__(self, dataset, batch_size: int, sampler, train: bool, drop_last: bool):
        self.dataset, self.batch_size, self.sampler = dataset, batch_size, sampler
        self.train, self.drop_last = train, drop_last

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        # One host -> device copy of the epoch's order, then every batch is a slice of it.
        where = getattr(self.dataset, "device", torch.device("cpu"))
        order = torch.as_tensor(list(self.sampler), dtype=torch.long).to(where, non_blocking=True)
        prefetch = getattr(self.dataset, "prefetch", None)  # a dataset that can gather the next batch meanwhile
        steps, size = len(self), self.batch_size
        following = order[:size]
        for k in range(steps):
            indices, following = following, (order[(k + 1) * size : (k + 2) * size] if k + 1 < steps else None)
            batch = self.dataset.get_batch(indices, self.train)
            if prefetch is not None and following is not None:
                prefetch(following)
            yield batch
