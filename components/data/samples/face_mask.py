"""Offline face-mask sample: real faces, with masks drawn on.

No face-mask dataset installs offline, so the sample is made from real faces that do: the 100 LFW faces bundled
with scikit-image, plus the faces OpenCV's Haar cascade finds in scikit-image's bundled photos. Every face gives
``variants`` images without a mask and ``variants`` with one, each with its own skin tint, pose jitter and
(for masks) shape and colour, so identity and tint carry no information about the label.

The output is the real format, ``<out>/with_mask/*.png`` and ``<out>/without_mask/*.png``, and the bytes are the
same on every run (fixed seed, fixed PNG settings) so the committed ``data.dvc`` stays valid.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

SIZE = 64
MASK_COLOURS = [  # RGB: surgical blue, white, black, grey, pink, navy, green, patterned base
    (140, 190, 230),
    (235, 235, 235),
    (30, 30, 35),
    (150, 150, 155),
    (230, 170, 190),
    (40, 50, 110),
    (90, 150, 110),
    (200, 120, 60),
]
SKIN_TINTS = [(1.0, 0.85, 0.72), (0.95, 0.78, 0.62), (0.8, 0.62, 0.48), (0.62, 0.46, 0.36), (1.0, 0.92, 0.85)]


def real_faces() -> list[np.ndarray]:
    """Grayscale uint8 face crops (SIZE x SIZE) from scikit-image's bundled data."""
    import skimage.data

    lfw = skimage.data.lfw_subset()[:100]  # the first 100 are faces, the rest non-faces
    faces = [cv2.resize((f * 255).round().astype(np.uint8), (SIZE, SIZE), interpolation=cv2.INTER_CUBIC) for f in lfw]
    if not hasattr(cv2, "CascadeClassifier"):  # an OpenCV built without objdetect (e.g. the GPU image's)
        from components.errors import DlfolioError

        raise DlfolioError(
            f"the face samples (face-mask, face-mask-transfer, happy-house) need OpenCV's CascadeClassifier, which "
            f"this OpenCV {cv2.__version__} lacks (no objdetect module): install opencv-python-headless, or make the "
            "sample elsewhere (`dlfolio data --data-root DIR face-mask`) and copy it here"
        )
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    for x, y, w, h in cascade.detectMultiScale(photo, scaleFactor=1.1, minNeighbors=5, minSize=(60, 60)):
        # Haar boxes sit high on the face; LFW crops run from brow to chin, so shift the box down a little.
        y0 = y + h // 8
        faces.append(cv2.resize(photo[y0 : y0 + h, x : x + w], (SIZE, SIZE), interpolation=cv2.INTER_AREA))
    return faces


def draw_mask(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a cloth/surgical mask over nose, mouth and chin of an RGB face crop."""
    out = face.copy()
    s = SIZE
    top = rng.uniform(0.50, 0.60) * s
    left, right = rng.uniform(0.12, 0.22) * s, rng.uniform(0.78, 0.88) * s
    chin = rng.uniform(0.92, 1.02) * s
    mid = (left + right) / 2 + rng.uniform(-2, 2)
    poly = np.array(
        [
            (left, top + 2),
            (mid - 6, top - rng.uniform(0, 3)),
            (mid + 6, top - rng.uniform(0, 3)),
            (right, top + 2),
            (right - 2, chin - 10),
            (mid + 8, chin),
            (mid - 8, chin),
            (left + 2, chin - 10),
        ],
        dtype=np.int32,
    )
    base = np.array(MASK_COLOURS[rng.integers(len(MASK_COLOURS))], dtype=float)
    colour = np.clip(base + rng.normal(0, 12, 3), 0, 255)
    cv2.fillPoly(out, [poly], tuple(int(c) for c in colour))
    pleat = tuple(int(c) for c in np.clip(colour * 0.75, 0, 255))
    for k in range(1, 4):  # pleats, so the mask is not a flat blob
        y = int(top + k * (chin - top) / 4.5)
        cv2.line(out, (int(left + 3), y), (int(right - 3), y), pleat, 1)
    strap = tuple(int(c) for c in np.clip(colour * 0.9, 0, 255))
    cv2.line(out, (int(left), int(top + 3)), (0, int(top - 6)), strap, 1)
    cv2.line(out, (int(right), int(top + 3)), (s - 1, int(top - 6)), strap, 1)
    # Soften the drawn edges to the blur level of the photo around them.
    return cv2.GaussianBlur(out, (3, 3), 0.6)


def jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small pose and exposure changes, as between two photos of the same person."""
    angle, scale = rng.uniform(-8, 8), rng.uniform(0.92, 1.08)
    m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), angle, scale)
    m[:, 2] += rng.uniform(-3, 3, 2)
    out = cv2.warpAffine(img, m, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT)
    gain, bias = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
    out = np.clip(out.astype(float) * gain + bias, 0, 255)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out.round().astype(np.uint8))


def tint(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = np.array(SKIN_TINTS[rng.integers(len(SKIN_TINTS))]) * rng.uniform(0.9, 1.1, 3)
    return np.clip(gray[..., None].astype(float) * t, 0, 255).round().astype(np.uint8)


def generate(out_dir: str | Path, variants: int = 2, seed: int = 0, faces: int | None = None) -> dict[str, int]:
    """Write the sample under ``out_dir`` (replacing what is there); returns the count per class. ``faces`` keeps
    only the first that many faces (a tiny sample for quick tests)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    counts = {"with_mask": 0, "without_mask": 0}
    rng = np.random.default_rng(seed)
    for i, face in enumerate(real_faces()[:faces]):
        for label in ("without_mask", "with_mask"):
            for v in range(variants):
                img = tint(face, rng)
                if label == "with_mask":
                    img = draw_mask(img, rng)
                img = jitter(img, rng)
                path = out_dir / label / f"face{i:03d}_{v}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                # cv2 writes BGR; fixed compression so the bytes never change between runs.
                cv2.imwrite(str(path), img[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
                counts[label] += 1
    return counts
