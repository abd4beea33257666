"""Semantic-segmentation data in its real format: an image folder and a mask folder paired by file name.

    <root>/images/<name>.png   RGB (or grey / RGBA) image
    <root>/masks/<name>.png    single-channel uint8 PNG (mode "L" or "P"): each pixel is a class INDEX 0..K-1
    <root>/classes.txt         optional: class names, one per line, line i naming index i

This is the layout of the CARLA self-driving masks the course used (there the index sits in the red channel:
convert such masks to one channel first) and of most segmentation exports. Validation describes the folder as
a table, one row per name, and runs GX suites over it and over the classes' pixel shares, so a missing mask,
a size mismatch or an out-of-range class index is reported by its file.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from components.data.formats.images import MissingDataError, rgb8
from components.errors import DataFormatError
from components.validation.expectations import (
    DataValidationError,
    ValidationReport,
    _context,
    image_size_expectations,
    run_suite,
)

IMAGES, MASKS, CLASSES_FILE = "images", "masks", "classes.txt"


def read_classes(root: str | Path) -> tuple[str, ...] | None:
    """The class names of ``classes.txt`` (index = line number - 1), or None when the file is absent."""
    path = Path(root) / CLASSES_FILE
    if not path.is_file():
        return None
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if len(names) < 2 or len(set(names)) != len(names):
        raise DataFormatError(f"{path}: expected at least 2 distinct class names, one per line; got {list(names)}")
    return names


def _describe(path: Path) -> dict:
    """Decodability, size, mode and (for masks) the largest value of one file; errors are kept, not raised."""
    row = {"decodable": False, "width": None, "height": None, "mode": "", "max_value": None, "error": ""}
    try:
        with Image.open(path) as im:
            im.load()  # verify() misses truncated pixel data; load() decodes it all
            row.update(
                decodable=True, width=im.width, height=im.height, mode=im.mode, max_value=int(np.asarray(im).max())
            )
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        row["error"] = f"cannot decode: {exc}"
    return row


def scan_pairs(root: str | Path) -> pd.DataFrame:
    """One row per file stem found in ``images/`` or ``masks/``: whether each side exists, decodes, its size,
    the mask's mode and largest class index. Nothing is skipped except hidden files."""
    root = Path(root)
    folders = {side: root / side for side in (IMAGES, MASKS)}
    missing = [str(f) for f in folders.values() if not f.is_dir()]
    if missing:
        raise MissingDataError(
            f"segmentation data needs {' and '.join(missing)}: run `dlfolio data unet-segmentation` "
            f"for the offline sample, or put images in {root}/images/<name>.png and class-index "
            f"masks in {root}/masks/<name>.png"
        )
    files = {
        side: {p.stem: p for p in sorted(f.iterdir()) if p.is_file() and not p.name.startswith(".")}
        for side, f in folders.items()
    }
    rows = []
    for stem in sorted(set(files[IMAGES]) | set(files[MASKS])):
        image, mask = files[IMAGES].get(stem), files[MASKS].get(stem)
        im = _describe(image) if image else {}
        mk = _describe(mask) if mask else {}
        rows.append(
            {
                "name": stem,
                "image": f"{IMAGES}/{image.name}" if image else f"{IMAGES}/{stem}.png (missing)",
                "mask": f"{MASKS}/{mask.name}" if mask else f"{MASKS}/{stem}.png (missing)",
                "has_image": image is not None,
                "has_mask": mask is not None,
                "image_decodable": im.get("decodable", False),
                "mask_decodable": mk.get("decodable", False),
                "width": im.get("width"),
                "height": im.get("height"),
                "sizes_match": bool(
                    im.get("decodable")
                    and mk.get("decodable")
                    and (im["width"], im["height"]) == (mk["width"], mk["height"])
                ),
                "mask_mode": mk.get("mode", ""),
                "mask_max": mk.get("max_value"),
                "error": "; ".join(e for e in (im.get("error"), mk.get("error")) if e),
            }
        )
    if not rows:
        raise MissingDataError(f"{root}/images and {root}/masks hold no files")
    return pd.DataFrame(rows)


def load_pair(root: Path, image: str, mask: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGB uint8 image (size, size, 3) and its class-index mask (size, size); the mask is resized with
    nearest neighbour so every pixel keeps a class index that really occurs there."""
    with Image.open(root / image) as im:
        x = rgb8(im)
        x = np.asarray(x if x.size == (size, size) else x.resize((size, size), Image.BILINEAR))
    with Image.open(root / mask) as mk:
        y = np.asarray(mk if mk.size == (size, size) else mk.resize((size, size), Image.NEAREST))
    return x, y.astype(np.uint8)


def load_pairs(root: str | Path, manifest: pd.DataFrame, size: int) -> tuple[np.ndarray, np.ndarray]:
    root = Path(root)
    pairs = [load_pair(root, i, m, size) for i, m in zip(manifest["image"], manifest["mask"])]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


# --- masks as served strings -------------------------------------------------------------------------------


def encode_mask(mask: np.ndarray) -> str:
    """A class-index mask as a base64 PNG string: the dataset's own mask format, small enough for JSON."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=np.uint8), mode="L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_mask(text: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(text))) as im:
        return np.asarray(im, dtype=np.uint8)


# --- validation --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentationRules:
    classes: tuple[str, ...]
    min_size: int = 16
    max_size: int = 4096
    min_images: int = 20
    min_class_share: float = 0.001  # every class at least this share of all pixels: it must be learnable
    max_class_share: float = 0.98  # and none this dominant: an all-background folder is a broken export


def pair_expectations(rules: SegmentationRules) -> list:
    import great_expectations as gx

    E, k = gx.expectations, len(rules.classes)
    return [
        E.ExpectTableRowCountToBeBetween(
            min_value=rules.min_images, meta={"explain": f"at least {rules.min_images} image/mask pairs"}
        ),
        E.ExpectColumnValuesToBeInSet(column="has_mask", value_set=[True], meta={"explain": "image without a mask"}),
        E.ExpectColumnValuesToBeInSet(column="has_image", value_set=[True], meta={"explain": "mask without an image"}),
        E.ExpectColumnValuesToBeInSet(
            column="image_decodable", value_set=[True], meta={"explain": "image must decode"}
        ),
        E.ExpectColumnValuesToBeInSet(column="mask_decodable", value_set=[True], meta={"explain": "mask must decode"}),
        E.ExpectColumnValuesToBeInSet(
            column="sizes_match", value_set=[True], meta={"explain": "mask must have its image's width and height"}
        ),
        E.ExpectColumnValuesToBeInSet(
            column="mask_mode",
            value_set=["L", "P"],
            meta={"explain": "mask must be one channel of class indices (PNG mode L or P)"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="mask_max",
            min_value=0,
            max_value=k - 1,
            meta={"explain": f"class indices in 0..{k - 1} ({k} classes)"},
        ),
        *image_size_expectations(rules.min_size, rules.max_size),
    ]


def class_pixel_table(root: Path, masks: list[str], classes: tuple[str, ...]) -> pd.DataFrame:
    """Per class: pixels over all masks, their share, and in how many masks the class occurs."""
    pixels = np.zeros(len(classes), dtype=np.int64)
    images = np.zeros(len(classes), dtype=np.int64)
    for rel in masks:
        with Image.open(root / rel) as mk:
            counts = np.bincount(np.asarray(mk).ravel(), minlength=len(classes))[: len(classes)]
        pixels += counts
        images += counts > 0
    return pd.DataFrame(
        {
            "class": list(classes),
            "index": range(len(classes)),
            "pixels": pixels,
            "share": pixels / max(1, pixels.sum()),
            "images": images,
        }
    )


def class_share_expectations(rules: SegmentationRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectColumnValuesToBeBetween(
            column="share",
            min_value=rules.min_class_share,
            max_value=rules.max_class_share,
            meta={"explain": f"each class's share of all pixels in [{rules.min_class_share}, {rules.max_class_share}]"},
        )
    ]


def validate_segmentation_folder(root: str | Path, rules: SegmentationRules) -> tuple[ValidationReport, pd.DataFrame]:
    """Scan and validate ``root``; returns the report and the manifest. Raises DataValidationError naming the
    files (or classes) that failed. Class shares are only counted once every mask is readable and in range."""
    root = Path(root)
    manifest = scan_pairs(root)
    context = _context()
    outcomes = run_suite(
        manifest, pair_expectations(rules), name="segmentation-pairs", id_column="name", context=context
    )
    rows = manifest.set_index("name")
    for o in outcomes:  # name the file at fault, with its decoder error or offending value
        o.failing = [_blame(rows.loc[n], o.column) if n in rows.index else n for n in o.failing]
    if all(o.success for o in outcomes):
        shares = class_pixel_table(root, manifest["mask"].tolist(), rules.classes)
        outcomes += run_suite(
            shares, class_share_expectations(rules), name="class-pixels", id_column="class", context=context
        )
    report = ValidationReport(str(root), outcomes, len(manifest))
    if not report.success:
        raise DataValidationError(report)
    return report, manifest


def _blame(row: pd.Series, column: str) -> str:
    if column in ("has_mask",):
        return f"{row['image']} has no mask {row['mask'].replace(' (missing)', '')}"
    if column in ("has_image",):
        return f"{row['mask']} has no image {row['image'].replace(' (missing)', '')}"
    if column == "mask_max":
        return f"{row['mask']} (class index {int(row['mask_max'])})"
    if column == "mask_mode":
        return f"{row['mask']} (mode {row['mask_mode']})"
    if column in ("image_decodable", "width", "height", "sizes_match"):
        return f"{row['image']} / {row['mask']}" + (f" ({row['error']})" if row["error"] else "")
    return f"{row['mask']}" + (f" ({row['error']})" if row["error"] else "")
