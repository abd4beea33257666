"""Image folders in the layout users bring: ``root/<class name>/<image file>``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from components.errors import DataFormatError, DlfolioError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class MissingDataError(DlfolioError, FileNotFoundError):
    """The dataset directory a project needs is absent or empty."""


def scan_image_folder(root: str | Path) -> pd.DataFrame:
    """One row per file under ``root``: path, label (its folder), decodable, width, height, channels, sha256.

    Nothing is skipped silently except hidden files: a stray or broken file shows up as a row that fails
    validation, with its path.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingDataError(
            f"data directory {root} does not exist: run `dlfolio data` for the offline sample, or put your "
            f"images in {root}/<class name>/"
        )
    # rglob does not descend into a linked folder: its images would vanish from training without a word (and
    # a model with F1 0.0 was registered). The data hash and DVC see only real files, so refuse the link.
    linked = sorted(p for p in root.rglob("*") if p.is_symlink() and p.is_dir())
    if linked:
        raise DataFormatError(
            f"{linked[0]} is a symbolic link to a folder ({linked[0].resolve()}); dlfolio does not follow "
            f"linked folders (the data hash would not cover them): copy the images into {root}"
            + (f" (and {len(linked) - 1} more linked folder(s))" if len(linked) > 1 else "")
        )
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    undecodable = [p for p in files if not _utf8_name(p.relative_to(root))]
    if undecodable:  # such a name cannot go into a table, a JSON report or an MLflow tag: rename it first
        shown = ", ".join(repr(os.fsencode(p.relative_to(root)))[2:-1] for p in undecodable[:5])
        raise DataFormatError(
            f"{root}: {len(undecodable)} file name(s) not in UTF-8: {shown}"
            + (f" and {len(undecodable) - 5} more" if len(undecodable) > 5 else "")
            + "; rename them (e.g. `convmv -f latin1 -t utf8 --notest -r DIR`)"
        )
    rows = []
    for path in files:
        rel = path.relative_to(root)
        row = {
            "path": str(rel),
            "label": rel.parts[0] if len(rel.parts) > 1 else "",
            "decodable": False,
            "width": None,
            "height": None,
            "channels": None,
            "error": "",
        }
        data = path.read_bytes()
        row["sha256"] = hashlib.sha256(data).hexdigest()
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            row["error"] = f"not an image file ({path.suffix or 'no suffix'})"
        else:
            try:
                with Image.open(path) as im:
                    im.load()  # verify() misses truncated pixel data; load() decodes it all
                    row.update(decodable=True, width=im.width, height=im.height, channels=len(im.getbands()))
            except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
                row["error"] = f"cannot decode: {exc}"  # a bomb (too many pixels) fails here, by its path
        rows.append(row)
    # Sizes stay null for files that do not decode: GX skips nulls, so such a file fails only "decodable".
    if not rows:
        raise MissingDataError(f"data directory {root} holds no files: expected {root}/<class name>/<image>")
    return pd.DataFrame(rows)


def _utf8_name(path: Path) -> bool:
    """False for a name whose bytes are not UTF-8 (Python holds them as lone surrogates)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_images(root: str | Path, manifest: pd.DataFrame, size: int) -> np.ndarray:
    """Decode the manifest's files as RGB uint8, resized to ``size`` x ``size``: shape (N, size, size, 3)."""
    root = Path(root)
    out = np.empty((len(manifest), size, size, 3), dtype=np.uint8)
    for i, rel in enumerate(manifest["path"]):
        with Image.open(root / rel) as im:
            out[i] = np.asarray(rgb8(im).resize((size, size), Image.BILINEAR))
    return out


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, 3) uint8 images resized to ``size`` x ``size`` as ``load_images`` resizes files (bilinear)."""
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images])


def rgb8(im: Image.Image) -> Image.Image:
    """``im`` as 8-bit RGB. Pillow's ``convert("RGB")`` clips a 16-bit grey PNG (mode ``I;16``, ``I``) at 255,
    which turns it almost white; scale it to 8 bits instead (0-65535 -> 0-255)."""
    if im.mode.startswith("I;16") or im.mode == "I":
        levels = np.asarray(im, dtype=np.float64) / 257.0  # PNG stores 16-bit grey as 0-65535
        return Image.fromarray(np.clip(np.rint(levels), 0, 255).astype(np.uint8), "L").convert("RGB")
    return im.convert("RGB")
