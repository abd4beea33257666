"""scikit-learn's 8 x 8 handwritten digits (UCI optdigits, 1797 images) written as an image folder.

Layout: ``root/<digit>/<index>.png``, 8-bit grayscale. The 0-16 intensities become 0-255 (x 255 / 16,
rounded). PNG files written by Pillow carry no timestamps, so the sample is byte-identical on every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def generate(out_dir: str | Path) -> dict[str, int]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * 255 / 16).astype(np.uint8)
    out_dir = Path(out_dir)
    for label in range(10):
        (out_dir / str(label)).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, digits.target)):
        Image.fromarray(image, mode="L").save(out_dir / str(label) / f"{i:04d}.png")
    return {"images": len(images), "classes": 10}


def load_grayscale(root: str | Path, paths, size: int) -> np.ndarray:
    """uint8 (N, size, size): each file decoded, converted to grayscale and resized."""
    root = Path(root)
    out = np.empty((len(paths), size, size), dtype=np.uint8)
    for i, rel in enumerate(paths):
        with Image.open(root / rel) as im:
            out[i] = np.asarray(im.convert("L").resize((size, size), Image.BILINEAR))
    return out
