"""Offline samples made of real Fashion-MNIST images, written in the transfer projects' real formats.

- ``write_image_folder``: ``<out>/<class>/<image>.png``, the layout of the MobileNetV2 assignment's dataset.
- ``write_driver_layout``: the State Farm distracted-driver layout of the VGG16 notebook,
  ``<out>/driver_imgs_list.csv`` (subject,classname,img) and ``<out>/imgs/train/c0..c9/<img>``. Fashion-MNIST's
  ten classes stand in for c0-c9; subjects are synthetic ids, each with images of every class, as each real
  driver was photographed doing every activity.

Images come from the IDX files of the Debian package ``dataset-fashion-mnist``; the same arguments write the
same bytes on every machine (a fixed pick of images, fixed PNG settings).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np

from components.data.formats.idx import FASHION_MNIST, FILES, read_idx
from components.data.formats.images import MissingDataError

FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")


def fashion_mnist_by_class(per_class: int, seed: int = 0) -> dict[int, np.ndarray]:
    """``per_class`` Fashion-MNIST training images (28x28 uint8) of each of the ten labels."""
    images_file, labels_file = FASHION_MNIST / FILES["train_images"], FASHION_MNIST / FILES["train_labels"]
    if not (images_file.is_file() and labels_file.is_file()):
        raise MissingDataError(
            f"Fashion-MNIST not found in {FASHION_MNIST}: install the Debian package "
            "`dataset-fashion-mnist` (sudo apt-get install dataset-fashion-mnist)"
        )
    images, labels = read_idx(images_file), read_idx(labels_file)
    rng = np.random.default_rng(seed)
    return {c: images[np.sort(rng.choice(np.flatnonzero(labels == c), per_class, replace=False))] for c in range(10)}


def _write_png(path: Path, gray: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # RGB files, as photos are; fixed compression so the bytes never change between runs.
    cv2.imwrite(str(path), np.repeat(gray[..., None], 3, axis=2), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def write_image_folder(
    out_dir: str | Path,
    classes: tuple[str, ...] = ("t-shirt", "trouser", "sneaker", "bag"),
    per_class: int = 60,
    seed: int = 0,
) -> dict[str, int]:
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    unknown = set(classes) - set(FASHION_CLASSES)
    if unknown:
        raise ValueError(f"unknown Fashion-MNIST class(es) {sorted(unknown)}; known: {', '.join(FASHION_CLASSES)}")
    by_class = fashion_mnist_by_class(per_class, seed)
    for name in classes:
        for i, img in enumerate(by_class[FASHION_CLASSES.index(name)]):
            _write_png(out_dir / name / f"{name}_{i:04d}.png", img)
    return {name: per_class for name in classes}


def write_driver_layout(
    out_dir: str | Path, subjects: int = 20, per_subject_class: int = 2, seed: int = 0
) -> dict[str, int]:
    """CSV + image folders with ``subjects x 10 x per_subject_class`` images; returns the count per class."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    by_class = fashion_mnist_by_class(subjects * per_subject_class, seed)
    rows = []
    number = 0
    for s in range(subjects):
        subject = f"p{s + 1:03d}"
        for c in range(10):
            for k in range(per_subject_class):
                number += 1
                name = f"img_{number}.png"
                _write_png(out_dir / "imgs" / "train" / f"c{c}" / name, by_class[c][s * per_subject_class + k])
                rows.append((subject, f"c{c}", name))
    with (out_dir / "driver_imgs_list.csv").open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["subject", "classname", "img"])
        writer.writerows(rows)
    return {f"c{c}": subjects * per_subject_class for c in range(10)}
