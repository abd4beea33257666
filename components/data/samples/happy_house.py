"""Offline happy-house sample: real faces with a smiling or a straight/frowning mouth drawn on, in the course's
h5 layout (train_happy.h5, test_happy.h5; 64x64x3 uint8; label 1 = happy).

The happy-house photos do not install offline. The faces here are real (scikit-image's 100 LFW faces and the
astronaut photo's face, as in the face-mask sample); only the mouth is drawn, so "happy" is a visible, learnable
property of each image. Every face appears in both classes with its own tint and pose jitter, so identity and
tint say nothing about the label, and the test faces are people the training set never shows.
The bytes are the same on every run (fixed seed; h5 without timestamps).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from components.data.formats.h5_images import h5_path, write_h5_split
from components.data.samples.face_mask import SIZE, jitter, real_faces, tint

LIP_COLOURS = [(120, 40, 45), (150, 60, 60), (90, 30, 35), (170, 80, 80)]


def draw_mouth(face: np.ndarray, happy: bool, rng: np.random.Generator) -> np.ndarray:
    """A smile (arc opening upwards) when ``happy``, else a straight or downturned mouth."""
    out = face.copy()
    cx, cy = SIZE / 2 + rng.uniform(-2, 2), SIZE * rng.uniform(0.70, 0.76)
    half = rng.uniform(8, 12)
    if happy:
        depth = rng.uniform(4, 7)
    else:
        depth = -rng.uniform(3, 6) if rng.random() < 0.5 else rng.uniform(-0.5, 0.5)
    xs = np.linspace(-half, half, 24)
    # A parabola through the mouth corners: positive depth bends the middle down, i.e. the corners up.
    ys = cy - depth / 2 + depth * (1 - (xs / half) ** 2)
    points = np.stack([cx + xs, ys], axis=1).round().astype(np.int32)
    colour = np.clip(np.array(LIP_COLOURS[rng.integers(len(LIP_COLOURS))]) + rng.normal(0, 10, 3), 0, 255)
    cv2.polylines(
        out,
        [points],
        isClosed=False,
        color=tuple(int(c) for c in colour),
        thickness=int(rng.integers(2, 4)),
        lineType=cv2.LINE_AA,
    )
    return cv2.GaussianBlur(out, (3, 3), 0.6)


def generate(out_dir: str | Path, variants: int = 4, test_faces: int = 20, seed: int = 0) -> dict[str, int]:
    """Write train_happy.h5 and test_happy.h5 under ``out_dir`` (replacing it); returns the image counts."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    rng = np.random.default_rng(seed)
    faces = real_faces()
    parts = {"train": faces[:-test_faces], "test": faces[-test_faces:]}
    counts = {}
    for part, group in parts.items():
        images, labels = [], []
        for face in group:
            for happy in (False, True):
                for _ in range(variants):
                    images.append(jitter(draw_mouth(tint(face, rng), happy, rng), rng))
                    labels.append(int(happy))
        order = rng.permutation(len(labels))  # the course files are shuffled, not grouped by person
        write_h5_split(h5_path(out_dir, "happy", part), part, np.stack(images)[order], np.array(labels)[order], [0, 1])
        counts[part] = len(labels)
    return counts
