"""MNIST's IDX file format (plain or .gz), and the Fashion-MNIST copy that stands in for MNIST offline."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np

from components.data.formats.images import MissingDataError
from components.errors import DataFormatError

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FILES = {  # MNIST's own file names; Fashion-MNIST uses the same ones
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataFormatError(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    body = data[4 + 4 * ndim :]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(body) != expected:
        raise DataFormatError(
            f"{path}: header says shape {shape} ({expected} bytes) but the file holds {len(body)} bytes"
        )
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx_files(root: str | Path) -> dict[str, Path]:
    """The four MNIST files under ``root``, gzipped or not; a clear error names any that are missing."""
    root = Path(root)
    found, missing = {}, []
    for key, name in FILES.items():
        candidates = [root / name, root / name.removesuffix(".gz")]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            missing.append(name)
        else:
            found[key] = hit
    if missing:
        raise MissingDataError(
            f"{root}: missing IDX file(s) {', '.join(missing)} (MNIST layout: "
            f"train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...)"
        )
    return found


def load_mnist(root: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images N x 28 x 28 uint8, train labels, test images, test labels) from an MNIST-layout folder."""
    files = find_idx_files(root)
    return tuple(read_idx(files[k]) for k in ("train_images", "train_labels", "test_images", "test_labels"))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, gzipped when ``path`` ends in .gz (mtime 0: the same bytes every run)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path = Path(path)
    with path.open("wb") as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
                fh.write(header + array.tobytes())
        else:
            raw.write(header + array.tobytes())


def copy_fashion_mnist(out_dir: str | Path, limit: int | None = None) -> dict[str, int]:
    """Copy the Fashion-MNIST IDX files (same format as MNIST) into ``out_dir``, byte for byte; with ``limit``,
    only the first ``limit`` training and ``limit // 5`` test items (a tiny sample for quick tests)."""
    if not all((FASHION_MNIST / name).is_file() for name in FILES.values()):
        raise MissingDataError(
            f"Fashion-MNIST not found in {FASHION_MNIST}: install the Debian package "
            "`dataset-fashion-mnist` (sudo apt-get install dataset-fashion-mnist), or put real MNIST IDX files "
            f"in {out_dir}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if limit is None:
        for name in FILES.values():
            shutil.copyfile(FASHION_MNIST / name, out_dir / name)
        return {"train": 60000, "test": 10000}
    counts = {"train": limit, "test": max(1, limit // 5)}
    for key, name in FILES.items():
        write_idx(out_dir / name, read_idx(FASHION_MNIST / name)[: counts[key.split("_")[0]]])
    return counts
