"""MNIST-layout IDX folders as array parts (train, test) with a channel axis: (N, 28, 28, 1) uint8."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.data.formats.arrays import ArrayFormatError, ArrayPart
from components.data.formats.idx import find_idx_files, read_idx


def load_mnist_parts(root: str | Path) -> dict[str, ArrayPart]:
    files = find_idx_files(root)
    parts = {}
    for part, prefix in (("train", "train"), ("test", "test")):
        images_file, labels_file = files[f"{prefix}_images"], files[f"{prefix}_labels"]
        images, labels = read_idx(images_file), read_idx(labels_file)
        if images.ndim != 3:
            raise ArrayFormatError(f"{images_file}: expected images of shape (N, rows, cols), got {images.shape}")
        if labels.ndim != 1:
            raise ArrayFormatError(f"{labels_file}: expected labels of shape (N,), got {labels.shape}")
        parts[part] = ArrayPart(
            images[..., None], labels.astype(np.int64), source=f"{images_file.name}, {labels_file.name}"
        )
    return parts
