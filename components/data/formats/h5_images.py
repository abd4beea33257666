"""h5 image datasets in the layout of the happy-house and SIGNS course datasets.

    <root>/train_<stem>.h5:  train_set_x (m, 64, 64, 3) uint8, train_set_y (m,) int, list_classes (k,)
    <root>/test_<stem>.h5:   test_set_x, test_set_y, list_classes

(``stem`` is ``happy`` or ``signs``.) Labels stored as (1, m) or (m, 1), as some copies have them, are read as
(m,). ``write_h5_split`` writes the same layout with no timestamps, so a generated file has the same bytes on
every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.data.formats.arrays import ArrayFormatError, ArrayPart
from components.data.formats.images import MissingDataError


def h5_path(root: str | Path, stem: str, part: str) -> Path:
    return Path(root) / f"{part}_{stem}.h5"


def read_h5_split(path: str | Path, part: str) -> ArrayPart:
    """Read ``<part>_set_x``, ``<part>_set_y`` and ``list_classes`` from one h5 file."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise MissingDataError(
            f"{path}: file not found (expected {part}_set_x, {part}_set_y and list_classes "
            f"in it; run `dlfolio data` for the offline sample)"
        )
    keys = {"x": f"{part}_set_x", "y": f"{part}_set_y", "classes": "list_classes"}
    try:
        with h5py.File(path, "r") as fh:
            missing = [k for k in keys.values() if k not in fh]
            if missing:
                raise ArrayFormatError(
                    f"{path}: missing key(s) {', '.join(missing)}; the file holds "
                    f"{', '.join(sorted(fh.keys())) or 'no keys'}"
                )
            images, labels, classes = (np.asarray(fh[k][()]) for k in keys.values())
    except OSError as exc:
        raise ArrayFormatError(f"{path}: not a readable h5 file ({exc})") from None
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ArrayFormatError(
            f"{path}: {keys['x']} has shape {images.shape}; expected (m, height, width, 3) or (m, height, width, 1)"
        )
    if labels.ndim == 2 and 1 in labels.shape:
        labels = labels.reshape(-1)
    if labels.ndim != 1:
        raise ArrayFormatError(f"{path}: {keys['y']} has shape {labels.shape}; expected (m,) or (1, m)")
    return ArrayPart(
        images,
        labels,
        source=f"{path.name}:{keys['x']}",
        declared_labels=tuple(int(c) for c in np.asarray(classes).ravel()),
    )


def load_h5_parts(root: str | Path, stem: str) -> dict[str, ArrayPart]:
    return {part: read_h5_split(h5_path(root, stem, part), part) for part in ("train", "test")}


def write_h5_split(path: str | Path, part: str, images: np.ndarray, labels: np.ndarray, classes) -> None:
    """Write one split in the course layout; byte-identical for identical arrays (no timestamps)."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", libver="earliest", track_order=False) as fh:
        fh.create_dataset(f"{part}_set_x", data=np.ascontiguousarray(images, dtype=np.uint8), track_times=False)
        fh.create_dataset(f"{part}_set_y", data=np.asarray(labels, dtype=np.int64), track_times=False)
        fh.create_dataset("list_classes", data=np.asarray(classes, dtype=np.int64), track_times=False)
