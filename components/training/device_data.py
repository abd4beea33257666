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
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, c, h, w = images.shape
        out_h, out_w = (self.output_size, self.output_size) if self.output_size else (h, w)
        dev = images.device
        x = images.float().div_(255)

        def uniform(lo, hi):
            return torch.rand(b, device=dev) * (hi - lo) + lo

        # affine_grid maps output coordinates in [-1, 1] to input coordinates: in = A @ out + t.
        s = uniform(*self.crop_scale)
        angle = uniform(-self.degrees, self.degrees) * (math.pi / 180)
        flip = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0) if self.flip else torch.ones(b, device=dev)
        room = (1 - s) + 2 * self.translate  # how far the window's centre may move and stay (mostly) inside
        tx, ty = uniform(-1, 1) * room, uniform(-1, 1) * room
        cos, sin = torch.cos(angle) * s, torch.sin(angle) * s
        theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
        grid = F.affine_grid(theta, [b, c, out_h, out_w], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

        if self.brightness:
            x = x * uniform(1 - self.brightness, 1 + self.brightness).view(b, 1, 1, 1)
        if self.contrast:
            grey = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - grey) * uniform(1 - self.contrast, 1 + self.contrast).view(b, 1, 1, 1) + grey
        if self.brightness or self.contrast:
            x = x.clamp_(0, 1)
        return (x - self.mean) / self.std


class Normalize(nn.Module):
    """The evaluation transform: an optional centre crop to ``output_size``, uint8 -> float, normalised."""

    def __init__(self, output_size: int | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.output_size = output_size
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.output_size:
            h, w = images.shape[-2:]
            top, left = (h - self.output_size) // 2, (w - self.output_size) // 2
            images = images[..., top : top + self.output_size, left : left + self.output_size]
        # (x / 255 - mean) / std as one fused kernel, x * scale + shift on the uint8 input: the four separate ops
        # took a third of the trainer's per-step overhead against a plain loop (benchmarks/RESULTS.md).
        return torch.addcmul(-self.mean / self.std, images, 1 / (255 * self.std))


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

    def to(self, device: torch.device) -> ImageTensorDataset:
        """A copy on ``device`` when the images take at most ``max_device_fraction`` of its free memory; otherwise
        (or for a CPU device) the images stay on the host, pinned when the device is a GPU so batch copies
        can be asynchronous. Transforms always run on ``device``."""
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
        else:
            x = self.images.index_select(0, indices).to(target)
        transform = self.augment if (train and self.augment is not None) else self.normalize
        x = transform(x)
        if self.labels is None:
            return (x,)
        y = self.labels.index_select(0, indices).to(target, non_blocking=True)
        return x, y

    STAGING_SLOTS = 3

    def _gather_to_gpu(self, indices: torch.Tensor, target: torch.device) -> torch.Tensor:
        """Gather a host-resident batch into a reused pinned buffer and copy it without blocking the host.

        Pinning a fresh buffer per batch is slow (measured: it halved ResNet-50's rate on an H100), so a few
        pinned buffers take turns; a buffer is refilled only after the GPU has finished copying out of it
        (its event), which also keeps the host at most that many batches ahead of the GPU.
        """
        staging = self.__dict__.setdefault("_staging", [None] * self.STAGING_SLOTS)
        slot = self.__dict__["_slot"] = (self.__dict__.get("_slot", -1) + 1) % self.STAGING_SLOTS
        n = len(indices)
        buffer, copied = staging[slot] if staging[slot] is not None else (None, None)
        if copied is not None:
            copied.synchronize()
        if buffer is None or buffer.shape[0] < n:
            buffer = torch.empty((n, *self.images.shape[1:]), dtype=self.images.dtype, pin_memory=True)
        torch.index_select(self.images, 0, indices, out=buffer[:n])
        x = buffer[:n].to(target, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()
        staging[slot] = (buffer, copied)
        return x


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
        for k in range(len(self)):
            yield self.dataset.get_batch(order[k * self.batch_size : (k + 1) * self.batch_size], self.train)
