"""Offline face-mask sample: real faces, with masks drawn on.

No face-mask dataset installs offline, so the sample is made from real faces that do: the 100 LFW faces bundled
with scikit-image, plus the faces OpenCV's Haar cascade finds in scikit-image's bundled photos. Every face gives
``variants`` images without a mask and ``variants`` with one, each with its own skin tint, pose jitter and
(for masks) shape and colour, so identity and tint carry no information about the label.

Where the mask goes (``mask_method``, the face-mask data section's setting of that name):

- ``landmarks``: from dlib's 68 facial landmarks (``dlib.get_frontal_face_detector()`` finds the face,
  ``shape_predictor_68_face_landmarks.dat`` of pip ``face-recognition-models`` places the points). The mask
  follows the jaw line (points 2-14) up the cheeks (1 and 15) to the nose bridge (between points 28 and 29),
  and stays under the eyes. A face the detector does not find is drawn as ``box``. The landmark model must
  load, else the sample is refused with what to install.
- ``box``: a polygon at fixed fractions of the face crop (the crop is the face box: LFW's own, or the Haar
  cascade's); this reproduces the sample as it was before landmarks, byte for byte.
- ``auto`` (default): ``landmarks`` where dlib and the model install, otherwise ``box``.

One log line says which method drew how many faces.

Licence: the 68-point model is CC0, but the data it was trained on (iBUG 300-W) is licensed for research only,
not for commercial use; a sample drawn with ``landmarks`` (the default where the model installs) inherits that
restriction. ``mask_method: box`` avoids the model.

The output is the real format, ``<out>/with_mask/*.png`` and ``<out>/without_mask/*.png``, and the bytes are the
same on every run (fixed seed, fixed PNG settings; dlib's detector and predictor are deterministic) so the
committed ``data.dvc`` stays valid.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

SIZE = 64
MaskMethod = Literal["landmarks", "box", "auto"]
MASK_METHODS: tuple[str, ...] = ("landmarks", "box", "auto")
LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"
MIN_FACE = 0.35  # a detection narrower than this share of the crop is not the crop's face
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


def default_landmark_model() -> Path | None:
    """The 68-point predictor file of pip ``face-recognition-models``, or None when that package is absent.
    Found by its spec: importing the package needs pkg_resources, which recent setuptools no longer has."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models" / LANDMARK_MODEL


class LandmarksUnavailable(Exception):
    """dlib or its 68-point model cannot be loaded; the message says which."""


@functools.lru_cache(maxsize=4)
def landmarker(model: str | None = None):
    """dlib's frontal face detector and the 68-point shape predictor at ``model`` (None: the installed one),
    loaded once a process (the model file is 100 MB)."""
    path = Path(model) if model is not None else default_landmark_model()
    if path is None:
        raise LandmarksUnavailable("pip face-recognition-models (dlib's landmark models) is not installed")
    if not path.is_file():
        raise LandmarksUnavailable(f"no 68-point landmark model at {path}")
    try:
        import dlib
    except ImportError as exc:
        raise LandmarksUnavailable(f"dlib does not import ({exc}); pip install dlib-bin") from None
    try:
        predictor = dlib.shape_predictor(str(path))
    except RuntimeError as exc:
        raise LandmarksUnavailable(f"{path} is not a dlib shape predictor ({exc})") from None
    return dlib.get_frontal_face_detector(), predictor


def face_landmarks(gray: np.ndarray, model: str | None = None) -> np.ndarray | None:
    """The 68 landmarks (x, y) of the face in a SIZE x SIZE grayscale crop, or None where dlib finds no face
    filling most of the crop. Raises LandmarksUnavailable when dlib or the model cannot load."""
    detector, predictor = landmarker(model)
    boxes = [b for b in detector(gray, 1) if b.width() >= MIN_FACE * gray.shape[1]]  # upsampled once: 64 px faces
    if not boxes:
        return None
    box = max(boxes, key=lambda b: b.area())
    shape = predictor(gray, box)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=float)


def landmark_mask_polygon(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A mask outline from 68 landmarks: along the jaw (points 2-14, the chin a little below), up the cheeks
    (1, 15) and over the nose bridge between points 28 and 29, kept under the lower eyelids."""
    centre = points[[1, 15, 8]].mean(axis=0)
    jaw = points[1:16].copy()
    jaw = centre + (jaw - centre) * rng.uniform(1.0, 1.06)  # a mask sits a little outside the face's outline
    jaw[7, 1] += rng.uniform(0.5, 3.0)  # point 8, the chin: the mask reaches under it
    jaw[[6, 8], 1] += rng.uniform(0.0, 1.5)
    nose = points[28] + rng.uniform(0.2, 1.0) * (points[29] - points[28])
    nose[1] -= rng.uniform(0, 1.0)  # the nose wire lifts it a little at the bridge
    # over each cheek, between the nose and the side of the face: at least a gap below that eye's lower lid
    cheeks = []
    for eye, side in ((points[36:42], jaw[0]), (points[42:48], jaw[-1])):
        x = eye[:, 0].mean()
        along = nose[1] + (side[1] - nose[1]) * (x - nose[0]) / (side[0] - nose[0] or 1.0)
        cheeks.append((x, max(along, eye[:, 1].max() + rng.uniform(1.5, 3.5))))
    left_cheek, right_cheek = cheeks
    outline = [*jaw[::-1], left_cheek, nose, right_cheek]  # 15 .. 1 along the jaw, then back over the nose
    return np.array(outline).round().astype(np.int32)


def draw_landmark_mask(face: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a cloth/surgical mask along the landmarks ``points`` of an RGB face crop: the same colours as
    ``draw_mask``, pleated (surgical) or plain woven cloth, with ear straps."""
    out = face.copy()
    s = SIZE
    poly = landmark_mask_polygon(points, rng)
    base = np.array(MASK_COLOURS[rng.integers(len(MASK_COLOURS))], dtype=float)
    colour = np.clip(base + rng.normal(0, 12, 3), 0, 255)
    inside = np.zeros((s, s), np.uint8)
    cv2.fillPoly(inside, [poly], 255)
    cloth = np.empty_like(out, dtype=float)
    cloth[:] = colour
    top, chin = float(poly[:, 1].min()), float(poly[:, 1].max())
    left, right = float(poly[:, 0].min()), float(poly[:, 0].max())
    if rng.random() < 0.6:  # surgical: three pleats across, darker than the cloth
        pleat = np.clip(colour * 0.75, 0, 255)
        for k in range(1, 4):
            y = int(top + (k + 0.5) * (chin - top) / 5)
            cv2.line(cloth, (int(left), y), (int(right), y), tuple(float(c) for c in pleat), 1)
    else:  # woven cloth: a faint weave, light and dark rows
        rows = np.arange(s)[:, None, None] % 2
        cloth *= 1 + rng.uniform(0.03, 0.08) * (2 * rows - 1)
    out = np.where(inside[..., None] > 0, np.clip(cloth, 0, 255), out).round().astype(np.uint8)
    strap = tuple(int(c) for c in np.clip(colour * 0.9, 0, 255))
    for end, edge in ((poly[14], 0), (poly[0], s - 1)):  # from the mask's sides (points 1, 15), over the ears
        cv2.line(out, (int(end[0]), int(end[1])), (edge, int(end[1] - rng.uniform(2, 6))), strap, 1)
    # Soften the drawn edges to the blur level of the photo around them.
    return cv2.GaussianBlur(out, (3, 3), 0.6)


@dataclass(frozen=True)
class MaskPlan:
    """Which faces get a landmark mask: ``points[i]`` are face i's 68 landmarks, None for the box method;
    ``reason`` says why no face uses landmarks, where none does."""

    method: str
    points: list[np.ndarray | None]
    reason: str = ""

    @property
    def by_landmarks(self) -> int:
        return sum(p is not None for p in self.points)

    def summary(self) -> str:
        box = len(self.points) - self.by_landmarks
        drawn = f"from dlib's 68 facial landmarks on {self.by_landmarks} faces, from the face box on {box}"
        return f"face-mask sample: masks drawn {drawn} (mask_method {self.method}{'; ' + self.reason if self.reason else ''})"


def plan_masks(faces: list[np.ndarray], mask_method: str = "auto", landmark_model: str | None = None) -> MaskPlan:
    """The landmarks of each face, or None where the box method draws it. ``landmarks`` needs dlib and the model
    (a DlfolioError names what is missing); ``auto`` falls back to the box for every face without them."""
    if mask_method not in MASK_METHODS:
        raise ValueError(f"mask_method {mask_method!r} is not one of {', '.join(MASK_METHODS)}")
    if mask_method == "box":
        return MaskPlan("box", [None] * len(faces))
    try:
        points = [face_landmarks(face, landmark_model) for face in faces]
    except LandmarksUnavailable as exc:
        if mask_method == "landmarks":
            from components.errors import DlfolioError

            raise DlfolioError(
                f"the face-mask sample's mask_method is landmarks, but {exc}: install dlib-bin and "
                "face-recognition-models, or set the data section's mask_method to auto or box"
            ) from None
        return MaskPlan(mask_method, [None] * len(faces), f"landmarks unavailable: {exc}")
    missed = sum(p is None for p in points)
    return MaskPlan(mask_method, points, f"dlib found no face in {missed}" if missed else "")


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


def generate(
    out_dir: str | Path,
    variants: int = 2,
    seed: int = 0,
    faces: int | None = None,
    mask_method: MaskMethod = "auto",
    landmark_model: str | Path | None = None,
) -> dict[str, int]:
    """Write the sample under ``out_dir`` (replacing what is there); returns the count per class. ``faces`` keeps
    only the first that many faces (a tiny sample for quick tests). ``mask_method`` and ``landmark_model`` (a
    68-point predictor file; None: face-recognition-models') choose where masks go (see the module's text)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    counts = {"with_mask": 0, "without_mask": 0}
    rng = np.random.default_rng(seed)
    chosen = real_faces()[:faces]
    plan = plan_masks(chosen, mask_method, None if landmark_model is None else str(landmark_model))
    logging.getLogger("dlfolio").info(plan.summary())
    for i, (face, points) in enumerate(zip(chosen, plan.points, strict=True)):
        for label in ("without_mask", "with_mask"):
            for v in range(variants):
                img = tint(face, rng)
                if label == "with_mask":
                    img = draw_mask(img, rng) if points is None else draw_landmark_mask(img, points, rng)
                img = jitter(img, rng)
                path = out_dir / label / f"face{i:03d}_{v}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                # cv2 writes BGR; fixed compression so the bytes never change between runs.
                cv2.imwrite(str(path), img[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
                counts[label] += 1
    return counts
