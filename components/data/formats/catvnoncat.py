"""The cat-vs-non-cat h5 layout (train_catvnoncat.h5 / test_catvnoncat.h5), and an offline sample in it.

Each file holds ``<split>_set_x`` (m, 64, 64, 3) uint8, ``<split>_set_y`` (m,) integer labels and
``list_classes`` (class names as bytes, index = label). The offline sample uses the same layout with real
photographs: scikit-image's LFW subset, 100 faces (label 1) and 99 non-face patches (label 0), resized to
64 x 64 RGB. h5py is told not to store object timestamps, so the files are byte-identical on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.data.formats.errors import format_error
from components.data.formats.images import MissingDataError

FILES = {"train": "train_catvnoncat.h5", "test": "test_catvnoncat.h5"}


@dataclass
class BinaryImageSet:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]  # name of label 0, label 1
    # Held out from the training file for conformal calibration only (Project.with_calibration): never trained on.
    X_cal: np.ndarray | None = None
    y_cal: np.ndarray | None = None


def write_split(path: Path, split: str, images: np.ndarray, labels: np.ndarray, classes: list[str]) -> None:
    import h5py

    # track_times=False and a fixed library-version range: no timestamps, same bytes every time
    with h5py.File(path, "w", libver=("earliest", "v110"), track_order=False) as fh:
        fh.create_dataset(f"{split}_set_x", data=images.astype(np.uint8), track_times=False)
        fh.create_dataset(f"{split}_set_y", data=labels.astype(np.int64), track_times=False)
        fh.create_dataset("list_classes", data=np.array([c.encode() for c in classes], dtype="S"), track_times=False)


def generate(out_dir: str | Path, size: int = 64, test_per_class: int = 25, seed: int = 3) -> dict[str, int]:
    from skimage import data
    from skimage.transform import resize

    faces = data.lfw_subset()  # (200, 25, 25) float in [0, 1]: the first 100 are faces
    labels = np.r_[np.ones(100, dtype=np.int64), np.zeros(100, dtype=np.int64)]
    small = resize(faces, (len(faces), size, size), order=1, anti_aliasing=False, preserve_range=True)
    images = np.repeat(np.round(np.clip(small, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=3)
    # One non-face patch is a flat area that rounds to a single grey level: validation rightly calls a constant
    # image broken, so the sample leaves it out.
    flat = images.reshape(len(images), -1)
    keep = flat.min(axis=1) < flat.max(axis=1)
    images, labels = images[keep], labels[keep]
    rng = np.random.default_rng(seed)
    test = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == k))[:test_per_class] for k in (0, 1)]))
    train = np.setdiff1d(np.arange(len(labels)), test)
    train = train[rng.permutation(len(train))]  # the original files are not sorted by class either
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = ["non-face", "face"]
    for split, idx in (("train", train), ("test", test)):
        write_split(out_dir / FILES[split], split, images[idx], labels[idx], classes)
    return {"train": len(train), "test": len(test)}


def read_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import h5py

    if not path.is_file():
        raise MissingDataError(
            f"{path} does not exist: run `dlfolio data logistic-regression` for the offline sample, "
            f"or put train_catvnoncat.h5 and test_catvnoncat.h5 in {path.parent}"
        )
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise format_error(str(path), "expect_h5_file", f"cannot open as HDF5: {exc}") from None
    with fh:
        keys = (f"{split}_set_x", f"{split}_set_y", "list_classes")
        missing = [k for k in keys if k not in fh]
        if missing:
            raise format_error(
                str(path), "expect_h5_datasets", f"missing dataset(s) {missing}; found {sorted(fh.keys())}"
            )
        X, y, classes = (fh[k][()] for k in keys)
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in np.asarray(classes).ravel()]
    return X, np.asarray(y).ravel(), classes


def load_catvnoncat(root: str | Path) -> BinaryImageSet:
    """Both files of ``root``; shapes and values are checked by validation, not here."""
    root = Path(root)
    X_train, y_train, classes = read_split(root / FILES["train"], "train")
    X_test, y_test, _ = read_split(root / FILES["test"], "test")
    return BinaryImageSet(X_train, y_train, X_test, y_test, classes)
