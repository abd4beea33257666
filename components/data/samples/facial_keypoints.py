"""The offline facial-keypoints sample: drawn 96x96 grey faces whose 15 keypoints are exact by construction.

No keypoint dataset installs offline, so these faces are GENERATED, not photographs: a shaded head ellipse,
eyes (white, iris, pupil) whose corners and centres are the keypoints, eyebrows from inner to outer end, a nose
ridge with nostrils around the tip, two lips meeting at the mouth corners, each face with its own proportions,
size, position, small rotation, contrast and noise, on a crop of one of scikit-image's bundled real photos.
Faces are drawn at 4x and averaged down, so edges are anti-aliased and keypoints sub-pixel. As in the Kaggle
file, about 70% of the rows give only the four common keypoints (eye centres, nose tip, bottom lip centre).
Written as ``training.zip`` holding ``training.csv`` (Kaggle ships it zipped); same seed, same bytes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from components.data.formats.facial_keypoints import COMMON, COORDINATES, KEYPOINTS, SIZE, to_frame

UP = 4  # drawing resolution factor; low-res pixel centre x maps to UP * x + (UP - 1) / 2
BACKGROUNDS = (
    "camera",
    "astronaut",
    "coffee",
    "chelsea",
    "coins",
    "moon",
    "page",
    "brick",
    "grass",
    "gravel",
    "rocket",
    "clock",
)


def _backgrounds() -> list[np.ndarray]:
    from skimage import data  # bundled files only (DATASETS.md): these load without a network

    def grey(x):
        return (x[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8) if x.ndim == 3 else x

    return [grey(getattr(data, name)()) for name in BACKGROUNDS]


def widened(rng: np.random.Generator, low: float, high: float, factor: float, size=None):
    """``rng.uniform(low, high, size)`` with the range scaled by ``factor`` about its middle, from the same draws
    (so ``factor`` 1 is exactly ``rng.uniform(low, high, size)``)."""
    if factor == 1.0:
        return rng.uniform(low, high, size)
    return (low + high) / 2 + factor * (rng.uniform(size=size) - 0.5) * (high - low)


def face_points(rng: np.random.Generator, spread: float = 1.0) -> tuple[dict[str, np.ndarray], float]:
    """The 15 keypoints in the face's own frame (head half-width 1, x to the image's right, y down) and the
    head's vertical semi-axis. The person's left eye is on the image's right (x > 0), as in Kaggle's data.
    ``spread`` widens every proportion's range about its middle (2: twice as wide, bolder faces)."""

    def uniform(low: float, high: float) -> float:
        return widened(rng, low, high, spread)

    eye_dx, eye_y = uniform(0.32, 0.42), uniform(-0.24, -0.1)
    ew = uniform(0.13, 0.18)
    brow_y = eye_y - uniform(0.14, 0.22)
    mouth_y, mw = uniform(0.42, 0.56), uniform(0.2, 0.32)
    p = {}
    for side, sign in (("left", 1), ("right", -1)):
        p[f"{side}_eye_center"] = (sign * eye_dx, eye_y)
        p[f"{side}_eye_inner_corner"] = (sign * (eye_dx - ew), eye_y + uniform(-0.01, 0.02))
        p[f"{side}_eye_outer_corner"] = (sign * (eye_dx + ew), eye_y + uniform(-0.02, 0.02))
        p[f"{side}_eyebrow_inner_end"] = (sign * (eye_dx - ew * uniform(0.7, 1.1)), brow_y)
        p[f"{side}_eyebrow_outer_end"] = (sign * (eye_dx + ew * uniform(1.0, 1.5)), brow_y + uniform(0, 0.06))
        p[f"mouth_{side}_corner"] = (sign * mw, mouth_y + uniform(-0.03, 0.03))
    p["nose_tip"] = (uniform(-0.04, 0.04), uniform(0.14, 0.28))
    p["mouth_center_top_lip"] = (uniform(-0.02, 0.02), mouth_y - uniform(0.04, 0.09))
    p["mouth_center_bottom_lip"] = (uniform(-0.02, 0.02), mouth_y + uniform(0.07, 0.15))
    return {k: np.asarray(v, dtype=float) for k, v in p.items()}, uniform(1.2, 1.4)


def _curve(a, mid, b, n: int = 12) -> np.ndarray:
    """A quadratic Bezier from a to b passing through mid at its half-way point."""
    control = 2 * mid - (a + b) / 2
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * a + 2 * t * (1 - t) * control + t**2 * b


def _ellipse(centre, rx, ry, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([centre[0] + rx * np.cos(t), centre[1] + ry * np.sin(t)], 1)


def draw_face(
    rng: np.random.Generator,
    backgrounds: list[np.ndarray],
    person: np.random.Generator | None = None,
    spread: float = 1.0,
    pose: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One image uint8 (96, 96) and its 30 coordinates in COORDINATES order (pixels, centres at integers).

    ``person`` draws what makes the face someone's: its proportions (``face_points``), skin tone, head outline,
    feature shades, eye opening and brow thickness; ``rng`` draws the image's own pose (size, rotation,
    position), background crop, lighting, contrast and noise. Without ``person`` both come from ``rng``, in the
    same order (the facial-keypoints sample); a fresh ``person`` generator of one seed per image draws the same
    person every time (the facenet-verification sample). ``spread``: see ``face_points``;
    ``pose`` scales the ranges of size, rotation and position about their middles (0.5: half as wide)."""
    person = rng if person is None else person
    points, head_ry = face_points(person, spread)
    scale, angle = widened(rng, 25, 40, pose), np.deg2rad(widened(rng, -18, 18, pose))
    centre = np.array([47.5, 47.5]) + widened(rng, -9, 9, pose, 2) + [0, widened(rng, -3, 5, pose)]
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])

    def pixels(p) -> np.ndarray:  # face frame -> low-res pixel coordinates
        return centre + scale * (np.asarray(p) @ rotation.T)

    def hi(p) -> list[tuple[float, float]]:  # face frame -> drawing coordinates
        return [tuple(q) for q in (UP * pixels(p) + (UP - 1) / 2).reshape(-1, 2)]

    big = SIZE * UP
    photo = backgrounds[rng.integers(len(backgrounds))]
    side = int(rng.integers(96, min(photo.shape) + 1))
    top, left = rng.integers(0, photo.shape[0] - side + 1), rng.integers(0, photo.shape[1] - side + 1)
    canvas = np.asarray(
        Image.fromarray(photo[top : top + side, left : left + side]).resize((big, big), Image.BILINEAR),
        dtype=np.float64,
    )

    # The head: a skin tone lit from one side, blended over the photo through its mask.
    skin = person.uniform(100, 215)
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).polygon(hi(_ellipse((0, person.uniform(0, 0.12)), 1.0, head_ry, 64)), fill=255)
    yy, xx = np.mgrid[:big, :big] / big - 0.5
    light = rng.uniform(0, 2 * np.pi)
    shaded = skin * (1 + rng.uniform(0.1, 0.45) * (xx * np.cos(light) + yy * np.sin(light)))
    m = np.asarray(mask, dtype=np.float64) / 255
    image = Image.fromarray(np.clip(canvas * (1 - m) + shaded * m, 0, 255).astype(np.uint8))

    draw = ImageDraw.Draw(image)
    dark, lip = max(0.0, skin - person.uniform(70, 110)), max(0.0, skin - person.uniform(35, 60))
    for side_name in ("left", "right"):
        c, inner, outer = (points[f"{side_name}_eye_{k}"] for k in ("center", "inner_corner", "outer_corner"))
        half = person.uniform(0.05, 0.08)
        eye = np.concatenate([_curve(inner, c - [0, half], outer), _curve(outer, c + [0, half * 0.8], inner)])
        draw.polygon(hi(eye), fill=int(min(255, skin + person.uniform(30, 70))), outline=int(dark))
        iris = min(half, np.linalg.norm(outer - inner) / 4)
        draw.polygon(hi(_ellipse(c, iris, iris, 24)), fill=int(dark + 20))
        draw.polygon(hi(_ellipse(c, iris / 2, iris / 2, 16)), fill=int(dark / 3))
        brow = np.stack([points[f"{side_name}_eyebrow_inner_end"], points[f"{side_name}_eyebrow_outer_end"]])
        draw.line(
            hi(_curve(brow[0], brow.mean(0) - [0, 0.03], brow[1])),
            fill=int(dark),
            width=max(1, int(UP * scale * person.uniform(0.04, 0.07))),
        )
    nose = points["nose_tip"]
    bridge = (points["left_eye_inner_corner"] + points["right_eye_inner_corner"]) / 2
    draw.line(
        hi(_curve(bridge, (bridge + nose) / 2 + [0.03, 0], nose)),
        fill=int(skin - 35),
        width=max(1, int(UP * scale * 0.03)),
    )
    for sign in (-1, 1):
        draw.polygon(hi(_ellipse(nose + [sign * 0.07, 0.04], 0.04, 0.025, 16)), fill=int(dark))
    left, right = points["mouth_left_corner"], points["mouth_right_corner"]
    top, bottom = points["mouth_center_top_lip"], points["mouth_center_bottom_lip"]
    seam = (left + right) / 2 + [0, (bottom[1] - top[1]) * 0.15]
    draw.polygon(hi(np.concatenate([_curve(right, top, left), _curve(left, seam, right)])), fill=int(lip))
    draw.polygon(hi(np.concatenate([_curve(left, seam, right), _curve(right, bottom, left)])), fill=int(lip + 10))
    draw.line(hi(_curve(left, seam, right)), fill=int(dark), width=max(1, int(UP * scale * 0.02)))

    small = np.asarray(image.resize((SIZE, SIZE), Image.BOX), dtype=np.float64)
    small = (small - small.mean()) * rng.uniform(0.7, 1.3) + small.mean() + rng.uniform(-25, 25)
    small += rng.normal(0, rng.uniform(0, 6), small.shape)
    coords = np.concatenate([pixels(points[k]) for k in KEYPOINTS])
    return np.clip(np.round(small), 0, 255).astype(np.uint8), coords


def generate(
    out_dir: str | Path, rows: int = 1000, common_only: float = 0.7, seed: int = 0, file: str = "training.zip"
) -> dict[str, int]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    backgrounds = _backgrounds()
    images, coords = zip(*(draw_face(rng, backgrounds) for _ in range(rows)))
    coords = np.round(np.stack(coords), 4)
    partial = rng.random(rows) < common_only
    keep = [i for i, c in enumerate(COORDINATES) if c.rsplit("_", 1)[0] in COMMON]
    rare = np.setdiff1d(np.arange(len(COORDINATES)), keep)
    coords[np.ix_(partial, rare)] = np.nan
    text = to_frame(np.stack(images), coords).to_csv(index=False, float_format="%.4f", lineterminator="\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # a fixed timestamp: the same bytes on every run
        info = zipfile.ZipInfo("training.csv", date_time=(2013, 5, 7, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, text)
    (out_dir / file).write_bytes(buffer.getvalue())
    return {"faces": rows, "complete": int((~partial).sum()), "common_keypoints_only": int(partial.sum())}
