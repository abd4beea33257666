"""dlib's pretrained face encoder as a second arm: a face box, 5 landmarks that align it, 128-d descriptors.

Models: pip ``face-recognition-models`` (CC0): ``dlib_face_recognition_resnet_model_v1.dat`` (a ResNet trained by
dlib's author on about 3 million faces; same person when the Euclidean distance is below 0.6, dlib's own rule)
and ``shape_predictor_5_face_landmarks.dat`` (eye corners and the nose base, enough to align the 150x150 chip
the ResNet reads). The 68-point predictor in the same package is NOT used: its training data, iBUG 300-W, is not
licensed for commercial use. The face box comes from dlib's HOG detector (``get_frontal_face_detector``, built
into dlib-bin); where it finds no face (the generated cartoon faces are often too small or too unlike a photo)
the whole image is taken as the box, and ``found`` says which.

The package's ``__init__`` imports pkg_resources, which is not installed, so its ``models/`` folder is found
from the import system's spec rather than by importing it. CPU cost, measured on this 2-core machine: ~0.085 s a
face for the descriptor, ~0.25 s to detect in an 800-pixel photo.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ENCODER = "dlib_face_recognition_resnet_model_v1.dat"
LANDMARKS = "shape_predictor_5_face_landmarks.dat"
SAME_PERSON_BELOW = 0.6  # dlib's documented threshold on the Euclidean distance of two descriptors


def models_dir() -> Path:
    """The ``models/`` folder of the installed face_recognition_models package (without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("face_recognition_models is not installed (pip install face-recognition-models)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int  # exclusive
    bottom: int

    @property
    def size(self) -> int:
        return max(self.right - self.left, self.bottom - self.top)


@lru_cache(maxsize=1)
def _models():
    import dlib

    root = models_dir()
    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(root / LANDMARKS)),
        dlib.face_recognition_model_v1(str(root / ENCODER)),
    )


def rgb(image: np.ndarray) -> np.ndarray:
    """A C-contiguous uint8 (H, W, 3) copy of a grey or RGB(A) image, as dlib wants it."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def detect(image: np.ndarray, upsample: int = 1) -> Box | None:
    """The largest face dlib's HOG detector finds (upsampling the image ``upsample`` times first), clipped to the
    image; None when it finds none."""
    detector, _, _ = _models()
    image = rgb(image)
    found = sorted(detector(image, upsample), key=lambda r: r.width() * r.height())
    if not found:
        return None
    r = found[-1]
    h, w = image.shape[:2]
    return Box(max(0, r.left()), max(0, r.top()), min(w, r.right() + 1), min(h, r.bottom() + 1))


def encode(images, boxes: list[Box | None] | None = None, upsample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(N, 128) float64 descriptors of ``images`` (uint8, grey or RGB) and a bool (N,) ``found``: whether the face
    box came from the detector. ``boxes`` (one per image, None = detect) skips the detector; an image where no
    face is found is described with the whole image as its box."""
    import dlib

    _, landmarks, encoder = _models()
    out, found = [], []
    for k, image in enumerate(images):
        image = rgb(image)
        box = boxes[k] if boxes is not None and boxes[k] is not None else detect(image, upsample)
        found.append(box is not None)
        if box is None:
            box = Box(0, 0, image.shape[1], image.shape[0])
        shape = landmarks(image, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))
        out.append(np.asarray(encoder.compute_face_descriptor(image, shape), dtype=np.float64))
    return np.stack(out) if out else np.zeros((0, 128)), np.asarray(found, dtype=bool)


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Euclidean distances of two (N, D) arrays: dlib's 0.6 rule is on this, not its square."""
    return np.sqrt(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).sum(1))


def square_crop(image: np.ndarray, box: Box, scale: float) -> np.ndarray:
    """The square of side ``scale`` x the box's, centred on the box, cut from the image (padded with its edge
    pixels where it reaches outside): a face framed with the head and some background around it."""
    side = max(1, round(box.size * scale))
    cx, cy = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    pad = max(0, -left, -top, left + side - image.shape[1], top + side - image.shape[0])
    widths = ((pad, pad), (pad, pad)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, widths, mode="edge")
    return padded[top + pad : top + pad + side, left + pad : left + pad + side]
