"""The offline segmentation sample: scenes built from scikit-image's bundled real photos, masks exact by construction.

No segmentation dataset installs offline, so each scene is a crop of a real photo (astronaut, coffee, chelsea,
rocket, motorcycle: the background class) with 1-4 objects pasted at random positions and sizes: horse
silhouettes (scikit-image's real horse mask) in a flat coat colour, and discs, boxes and triangles each filled
with its own real texture photo (brick, grass, gravel). Each class is tinted around its own hue, as a street
scene's sky, road or vegetation is, but the photos hold the same colours (a blue sky, brown coffee, green
grass-like patches), so colour alone does not give the class away: texture and shape decide. Every object writes its
class index into the mask where it writes its pixels, so the mask is exact. Written as ``images/NNNN.png``,
``masks/NNNN.png`` and ``classes.txt``, the real format of ``segmentation_masks``; the same seed gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from components.data.formats.segmentation_masks import CLASSES_FILE, IMAGES, MASKS

CLASSES = ("background", "horse", "disc", "box", "triangle")
BACKGROUNDS = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle")
TEXTURES = {"disc": "brick", "box": "grass", "triangle": "gravel"}  # the horse has a flat coat
HUES = {"horse": 0.08, "disc": 0.6, "box": 0.33, "triangle": 0.85}  # brown, blue, green, magenta (jittered)
TEXTURE_SIZE = 160  # the 512-px photos shrunk, so an object shows several bricks or grass blades


def _photos() -> tuple[list[np.ndarray], dict[str, np.ndarray], np.ndarray]:
    from skimage import data  # bundled files only (DATASETS.md): these load without a network

    def rgb(name):
        image = getattr(data, name)()
        return image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)

    backgrounds = [rgb(n) for n in BACKGROUNDS]
    textures = {
        kind: _resize(getattr(data, name)(), (TEXTURE_SIZE, TEXTURE_SIZE)).astype(np.float32) / 255
        for kind, name in TEXTURES.items()
    }
    horse = ~data.horse()  # the bundled silhouette is black on white: True = horse
    rows, cols = np.flatnonzero(horse.any(1)), np.flatnonzero(horse.any(0))
    return backgrounds, textures, horse[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _resize(array: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """``array`` resized to (height, width) with PIL (deterministic across runs)."""
    mode = Image.NEAREST if nearest else Image.BILINEAR
    if array.dtype == bool:
        return np.asarray(Image.fromarray(array.astype(np.uint8) * 255).resize(size[::-1], mode)) > 127
    return np.asarray(Image.fromarray(array).resize(size[::-1], mode))


def _shape(kind: str, h: int, w: int, rng: np.random.Generator, horse: np.ndarray) -> np.ndarray:
    """A boolean (h, w) footprint of one object."""
    yy, xx = np.mgrid[:h, :w] + 0.5
    if kind == "horse":
        footprint = _resize(horse, (h, w))
        return footprint[:, ::-1] if rng.random() < 0.5 else footprint
    if kind == "disc":  # an ellipse filling the box
        return ((yy / h - 0.5) ** 2 + (xx / w - 0.5) ** 2) <= 0.25
    if kind == "box":  # a filled rectangle with a 1-px margin, so boxes are not whole-window blocks
        return (yy > 1) & (yy < h - 1) & (xx > 1) & (xx < w - 1)
    apex = rng.uniform(0.2, 0.8) * w  # triangle: base at the bottom, apex somewhere along the top
    t = yy / h
    return (xx >= apex * (1 - t)) & (xx <= apex + (w - apex) * t)


def _tint(kind: str, rng: np.random.Generator) -> np.ndarray:
    """An RGB colour near the class's hue, with random saturation and brightness."""
    import colorsys

    hue = (HUES[kind] + rng.normal(0, 0.05)) % 1
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.35, 0.9), rng.uniform(120, 255)))


def make_scene(rng: np.random.Generator, size: int, backgrounds, textures, horse) -> tuple[np.ndarray, np.ndarray]:
    photo = backgrounds[rng.integers(len(backgrounds))]
    crop = int(rng.integers(size, min(photo.shape[:2]) // 2))  # zoomed-in crops look more like scenes
    top, left = rng.integers(photo.shape[0] - crop + 1), rng.integers(photo.shape[1] - crop + 1)
    image = _resize(np.ascontiguousarray(photo[top : top + crop, left : left + crop]), (size, size)).astype(np.float32)
    mask = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        label = int(rng.integers(1, len(CLASSES)))
        h, w = (int(v) for v in rng.integers(size // 5, size // 2 + 1, size=2))
        if CLASSES[label] == "horse":  # keep the silhouette's proportions roughly
            w = min(size - 1, int(h * horse.shape[1] / horse.shape[0] * rng.uniform(0.85, 1.15)))
        y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        footprint = _shape(CLASSES[label], h, w, rng, horse)
        tint = _tint(CLASSES[label], rng)
        if CLASSES[label] in textures:
            texture = textures[CLASSES[label]]
            ty, tx = rng.integers(texture.shape[0] - h), rng.integers(texture.shape[1] - w)
            fill = (0.2 + 0.8 * texture[ty : ty + h, tx : tx + w, None]) * tint  # texture times a random colour
        else:
            fill = np.broadcast_to(tint * 0.8, (h, w, 3))
        window = image[y : y + h, x : x + w]
        window[footprint] = fill[footprint]
        mask[y : y + h, x : x + w][footprint] = label
    return np.clip(image, 0, 255).astype(np.uint8), mask


def generate(out_dir: str | Path, count: int = 800, size: int = 64, seed: int = 0) -> dict[str, int]:
    out_dir = Path(out_dir)
    for side in (IMAGES, MASKS):
        (out_dir / side).mkdir(parents=True, exist_ok=True)
    backgrounds, textures, horse = _photos()
    rng = np.random.default_rng(seed)
    for i in range(count):
        image, mask = make_scene(rng, size, backgrounds, textures, horse)
        Image.fromarray(image).save(out_dir / IMAGES / f"{i:04d}.png")
        Image.fromarray(mask, mode="L").save(out_dir / MASKS / f"{i:04d}.png")
    (out_dir / CLASSES_FILE).write_text("".join(c + "\n" for c in CLASSES), encoding="utf-8")
    return {"images": count, "classes": len(CLASSES), "size": size}
