"""Out-of-distribution probes for 28x28 grayscale classifiers: the test images turned or inverted, and another
dataset. With real MNIST as training data, "digits" is handwriting too (near-distribution): use "rotated" and
"inverted" there; with the Fashion-MNIST sample all three are out of distribution."""

from __future__ import annotations

import numpy as np


def rotated(images: np.ndarray, quarter_turns: int = 1) -> np.ndarray:
    """Images (N, H, W, C) turned by 90 degrees ``quarter_turns`` times."""
    return np.ascontiguousarray(np.rot90(images, k=quarter_turns, axes=(1, 2)))


def inverted(images: np.ndarray) -> np.ndarray:
    """Dark strokes on a white ground: the photographic negative of uint8 images."""
    return 255 - images


def sklearn_digits(size: int = 28, limit: int | None = None) -> np.ndarray:
    """scikit-learn's 8x8 handwritten digits (UCI optdigits), upscaled MNIST-style: a 20x20 digit centred in a
    ``size`` x ``size`` frame, white on black, uint8 (N, size, size, 1)."""
    import torch
    from sklearn.datasets import load_digits
    from torchvision.transforms.v2 import functional as F

    digits = load_digits().images[:limit]  # values 0..16
    inner = round(size * 20 / 28)
    small = torch.as_tensor(digits / 16.0, dtype=torch.float32)[:, None]
    big = F.resize(small, [inner, inner], antialias=True).clamp(0, 1)
    pad = (size - inner) // 2
    framed = torch.nn.functional.pad(big, (pad, size - inner - pad, pad, size - inner - pad))
    return (framed * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
