"""Offline SIGNS-layout sample: scikit-learn's handwritten digits 0-5, upscaled to 64x64x3, in the course's h5
layout (train_signs.h5, test_signs.h5; labels 0-5; list_classes [0..5]).

The SIGNS photos (hands showing 0-5 fingers) do not install offline. The stand-in keeps their shape, label set
and size (about 1080 images, 6 classes) with real handwriting: each 8x8 digit (UCI optdigits) is upscaled, drawn
in a random ink colour on a random background with a small shift and rotation, so colour says nothing about the
label. The bytes are the same on every run (fixed seed; h5 without timestamps).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from components.data.formats.h5_images import h5_path, write_h5_split

SIZE = 64
CLASSES = list(range(6))


def render(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An 8x8 digit (0..16) as a SIZE x SIZE RGB image: ink and paper colours, shift, rotation."""
    ink = cv2.resize((digit / 16.0).astype(np.float32), (SIZE - 16, SIZE - 16), interpolation=cv2.INTER_CUBIC)
    canvas = np.zeros((SIZE, SIZE), np.float32)
    canvas[8:-8, 8:-8] = np.clip(ink, 0, 1)
    m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), rng.uniform(-12, 12), rng.uniform(0.9, 1.1))
    m[:, 2] += rng.uniform(-4, 4, 2)
    alpha = cv2.warpAffine(canvas, m, (SIZE, SIZE))[..., None]
    paper, pen = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    while np.abs(paper - pen).sum() < 200:  # keep the digit visible
        pen = rng.uniform(0, 255, 3)
    return np.clip(paper * (1 - alpha) + pen * alpha, 0, 255).round().astype(np.uint8)


def generate(
    out_dir: str | Path, test_share: float = 0.1, seed: int = 0, per_class: int | None = None
) -> dict[str, int]:
    """Write train_signs.h5 and test_signs.h5 under ``out_dir`` (replacing it); returns the image counts.
    ``per_class`` keeps only the first that many digits of each class (a tiny sample for quick tests)."""
    from sklearn.datasets import load_digits

    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    digits = load_digits()
    keep = digits.target <= max(CLASSES)
    images, labels = digits.images[keep], digits.target[keep].astype(np.int64)
    if per_class is not None:
        take = np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in CLASSES]))
        images, labels = images[take], labels[take]
    rng = np.random.default_rng(seed)
    rendered = np.stack([render(d, rng) for d in images])
    test = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[: int(round(test_share * (labels == c).sum()))] for c in CLASSES]
    )
    is_test = np.isin(np.arange(len(labels)), test)
    # Shuffled, as the course files are; each class is split in the same proportion.
    parts = {"train": rng.permutation(np.flatnonzero(~is_test)), "test": rng.permutation(np.flatnonzero(is_test))}
    for part, idx in parts.items():
        write_h5_split(h5_path(out_dir, "signs", part), part, rendered[idx], labels[idx], CLASSES)
    return {part: len(idx) for part, idx in parts.items()}
