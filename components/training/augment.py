"""Preprocessing and augmentation with torchvision.transforms.v2, on uint8 CHW tensors."""

from __future__ import annotations

from typing import Literal

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD) -> v2.Transform:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def train_transform(
    policy: Literal["none", "light", "strong", "affine"] = "light", mean=IMAGENET_MEAN, std=IMAGENET_STD
) -> v2.Transform:
    """Rotation, shift, flip and colour jitter as the source projects describe; 'none' only normalises.

    'affine' is rotation and shift only: a mirrored digit or letter is a different symbol, so no flip.
    """
    steps: list[v2.Transform] = []
    if policy == "affine":
        steps += [v2.RandomAffine(degrees=10, translate=(0.1, 0.1))]
    if policy in ("light", "strong"):
        steps += [v2.RandomHorizontalFlip(), v2.RandomAffine(degrees=10, translate=(0.08, 0.08))]
    if policy == "strong":
        steps += [v2.RandomAffine(degrees=0, scale=(0.9, 1.1)), v2.ColorJitter(0.3, 0.3, 0.3, 0.02)]
    elif policy == "light":
        steps += [v2.ColorJitter(brightness=0.2, contrast=0.2)]
    return v2.Compose([*steps, normalize(mean, std)])


# train_transform's policies as ``device_data.BatchAugment`` arguments, for whole batches on a GPU (None: normalise
# only). Keep the two in step. 'strong' has none: BatchAugment has no saturation or hue jitter.
BATCHED_POLICIES: dict[str, dict | None] = {
    "none": None,
    "light": dict(flip=True, degrees=10, translate=0.08, brightness=0.2, contrast=0.2),
    "affine": dict(flip=False, degrees=10, translate=0.1),
}


class ArrayDataset(torch.utils.data.Dataset):
    """uint8 images (N, H, W, C) and integer labels, transformed per item."""

    def __init__(self, images, labels=None, transform: v2.Transform | None = None):
        self.images = torch.as_tensor(images).permute(0, 3, 1, 2).contiguous()
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
        self.transform = transform or normalize()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        x = self.transform(self.images[i])
        return (x,) if self.labels is None else (x, self.labels[i])
