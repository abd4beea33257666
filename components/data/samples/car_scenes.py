"""The offline detection sample: side-view cars and trucks drawn on crops of scikit-image's real photos.

No box-annotated street photos install offline, so each scene is a crop of a real bundled photo (astronaut,
coffee, chelsea, rocket, motorcycle, camera, immunohistochemistry) with 0-4 vehicles drawn on it: a car is a
body, a cabin with a window and two wheels; a truck is a tall cargo box, a small cab and three wheels. Colours,
sizes, aspect ratios and facing direction are random, and vehicles may overlap a little. Each box is the exact
extent of the pixels its vehicle paints, so the annotations are exact by construction. Written as
``images/NNNN.jpg`` + ``boxes.csv`` (``box_annotations``'s real format); the same seed gives the same bytes.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image

from components.data.formats.box_annotations import BOXES_FILE, COLUMNS, IMAGES

CLASSES = ("car", "truck")
BACKGROUNDS = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle", "camera", "immunohistochemistry")
MAX_OVERLAP = 0.25  # share of the smaller of two boxes that may lie under the other: no vehicle is hidden


def _photos() -> list[np.ndarray]:
    from skimage import data  # bundled files only (DATASETS.md): these load without a network

    photos = []
    for name in BACKGROUNDS:
        image = getattr(data, name)()
        image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)
        photos.append(np.repeat(image[..., None], 3, 2) if image.ndim == 2 else image[..., :3])
    return photos


def _colour(rng: np.random.Generator, saturation=(0.4, 1.0), value=(0.35, 1.0)) -> np.ndarray:
    return 255 * np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value)))


def _draw_vehicle(kind: str, w: int, h: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An (h, w, 3) float picture and its (h, w) footprint of one vehicle facing right (flipped at random)."""
    yy, xx = (np.mgrid[:h, :w] + 0.5) / np.array([h, w])[:, None, None]
    paint = np.zeros((h, w, 3))
    foot = np.zeros((h, w), dtype=bool)

    def fill(region, colour):
        paint[region] = colour
        foot[region] = True

    body, glass, tyre = _colour(rng), np.array([170, 200, 225]) * rng.uniform(0.6, 1.0), np.array([25, 25, 25])
    r = 0.17  # wheel radius as a share of the height; wheels touch the bottom edge
    if kind == "car":
        fill((yy > 0.42) & (yy < 0.85) & (xx < 0.98), body)
        slope = 0.15 * (0.42 - yy) / 0.32  # the cabin narrows towards the roof
        cabin = (yy > 0.1) & (yy <= 0.42) & (xx > 0.22 + slope) & (xx < 0.72 - slope)
        fill(cabin, body * 0.85)
        fill(cabin & (yy > 0.17) & (yy < 0.38) & (np.abs(xx - 0.47) > 0.02), glass)
        wheels = (0.22, 0.76)
    else:
        fill((yy < 0.74) & (xx < 0.68), _colour(rng, saturation=(0.0, 0.5), value=(0.55, 1.0)))  # cargo box
        fill((yy > 0.28) & (yy < 0.8) & (xx > 0.7) & (xx < 0.99), body)  # cab
        fill((yy > 0.34) & (yy < 0.52) & (xx > 0.8) & (xx < 0.95), glass)
        fill((yy >= 0.74) & (yy < 0.8) & (xx < 0.7), tyre * 2)  # chassis
        wheels = (0.14, 0.42, 0.84)
    for cx in wheels:
        fill(((xx - cx) * w / h) ** 2 + (yy - (1 - r)) ** 2 <= r**2, tyre)
    return (paint[:, ::-1], foot[:, ::-1]) if rng.random() < 0.5 else (paint, foot)


def _overlap(a, b) -> float:
    """Intersection over the smaller box's area (IoU would let a small car vanish behind a large truck)."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def make_scene(rng: np.random.Generator, size: int, photos: list[np.ndarray]) -> tuple[np.ndarray, list[tuple]]:
    """One image and its boxes ``(x_min, y_min, x_max, y_max, class)`` in pixels (x_max, y_max exclusive)."""
    photo = photos[rng.integers(len(photos))]
    crop = int(rng.integers(size, min(photo.shape[:2]) * 2 // 3))
    top, left = rng.integers(photo.shape[0] - crop + 1), rng.integers(photo.shape[1] - crop + 1)
    image = np.asarray(
        Image.fromarray(np.ascontiguousarray(photo[top : top + crop, left : left + crop])).resize(
            (size, size), Image.BILINEAR
        )
    ).astype(np.float64)
    boxes: list[tuple] = []
    for _ in range(int(rng.integers(0, 5))):
        kind = CLASSES[int(rng.random() < 0.4)]
        low, high, aspect = (0.2, 0.45, (0.45, 0.6)) if kind == "car" else (0.3, 0.6, (0.55, 0.75))
        w = int(rng.uniform(low, high) * size)
        h = int(w * rng.uniform(*aspect))
        paint, foot = _draw_vehicle(kind, w, h, rng)
        for _attempt in range(10):  # somewhere it overlaps no earlier vehicle much; else leave it out
            x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            rows, cols = np.flatnonzero(foot.any(1)), np.flatnonzero(foot.any(0))
            box = (x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1, kind)
            if all(_overlap(box, other) <= MAX_OVERLAP for other in boxes):
                image[y : y + h, x : x + w][foot] = paint[foot]
                boxes.append(box)
                break
    return np.clip(image, 0, 255).astype(np.uint8), boxes


def generate(out_dir: str | Path, count: int = 1000, size: int = 96, seed: int = 0) -> dict[str, int]:
    out_dir = Path(out_dir)
    (out_dir / IMAGES).mkdir(parents=True, exist_ok=True)
    photos = _photos()
    rng = np.random.default_rng(seed)
    lines = [",".join(COLUMNS)]
    for i in range(count):
        image, boxes = make_scene(rng, size, photos)
        name = f"{i:04d}.jpg"
        Image.fromarray(image).save(out_dir / IMAGES / name, quality=92)
        lines += [f"{name},{x0},{y0},{x1},{y1},{kind}" for x0, y0, x1, y1, kind in boxes]
    (out_dir / BOXES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"images": count, "boxes": len(lines) - 1, "classes": len(CLASSES), "size": size}
