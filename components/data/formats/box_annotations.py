"""Object-detection data in its real format: an image folder and one box table.

    <root>/images/<file>     JPEG or PNG images (any size)
    <root>/boxes.csv         one row per object: image,x_min,y_min,x_max,y_max,class

``image`` is the file name inside ``images/``; coordinates are pixels of that image, measured at pixel
edges (a box over columns 10..19 has x_min=10, x_max=20), so 0 <= x_min < x_max <= width. An image without
a row has no objects. This is the shape of the Kaggle/Udacity car-detection CSVs: their column names
(``Frame``/``xmin``/``ymin``/``xmax``/``ymax``/``Label``) are read as aliases, and a table without a class
column (Kaggle's "car object detection") labels every box ``car``.

Validation describes the table, one row per CSV line, and runs a GX suite over it (the box lies inside its
image, has a positive width and height, a known class, and its image exists and decodes), then a second
suite over the images; a failure names the CSV line and image file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from components.data.formats.errors import read_csv_table
from components.data.formats.images import MissingDataError, rgb8
from components.errors import DataFormatError
from components.validation.expectations import (
    DataValidationError,
    ValidationReport,
    _context,
    image_size_expectations,
    run_suite,
)

IMAGES, BOXES_FILE = "images", "boxes.csv"
COLUMNS = ("image", "x_min", "y_min", "x_max", "y_max", "class")
COORDINATES = COLUMNS[1:5]
ALIASES = {
    "frame": "image",
    "filename": "image",
    "xmin": "x_min",
    "ymin": "y_min",
    "xmax": "x_max",
    "ymax": "y_max",
    "label": "class",
}
DEFAULT_CLASS = "car"  # for box tables that have no class column
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def read_boxes(root: str | Path) -> pd.DataFrame:
    """The box table with canonical column names, a ``line`` column (its line in the CSV) and coordinates as
    floats (NaN where a cell is not a number, for validation to report)."""
    path = Path(root) / BOXES_FILE
    if not path.is_file():
        raise MissingDataError(
            f"box annotations {path} do not exist: run `dlfolio data yolo-cars` for the offline "
            f"sample, or write {BOXES_FILE} with columns {','.join(COLUMNS)} beside images/"
        )
    table = read_csv_table(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    table = table.rename(columns=lambda c: ALIASES.get(c.strip().lower(), c.strip().lower()))
    if "class" not in table.columns:
        table["class"] = DEFAULT_CLASS
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {missing}; expected {','.join(COLUMNS)}")
    table = table[list(COLUMNS)].copy()
    for c in COORDINATES:
        table[c] = pd.to_numeric(table[c], errors="coerce")
    table.insert(0, "line", np.arange(2, len(table) + 2))  # line 1 is the header
    return table


def image_files(root: str | Path) -> list[str]:
    folder = Path(root) / IMAGES
    if not folder.is_dir():
        raise MissingDataError(f"detection data needs the image folder {folder}")
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def describe_image(path: Path) -> dict:
    """Decodability and size of one image; errors are kept, not raised."""
    try:
        with Image.open(path) as im:
            im.load()  # verify() misses truncated pixel data
            return {"decodable": True, "width": im.width, "height": im.height, "error": ""}
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return {"decodable": False, "width": None, "height": None, "error": f"cannot decode: {exc}"}


def scan_images(root: str | Path) -> pd.DataFrame:
    """One row per image file (annotated or not): whether it decodes, its size and how many boxes it has."""
    root = Path(root)
    rows = [{"image": name, **describe_image(root / IMAGES / name)} for name in image_files(root)]
    if not rows:
        raise MissingDataError(f"{root / IMAGES} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class BoxRules:
    classes: tuple[str, ...]
    min_size: int = 16
    max_size: int = 4096
    min_images: int = 20
    min_boxes_per_class: int = 5


def box_table(boxes: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
    """The box table joined with its image's size, plus the quantities the suite checks."""
    sizes = images.set_index("image")
    table = boxes.copy()
    table["image_found"] = table["image"].isin(sizes.index)
    table["image_decodable"] = table["image"].map(sizes["decodable"]).fillna(False).astype(bool)
    width, height = table["image"].map(sizes["width"]), table["image"].map(sizes["height"])
    table["box_width"] = table["x_max"] - table["x_min"]
    table["box_height"] = table["y_max"] - table["y_min"]
    table["right_margin"] = width - table["x_max"]  # NaN for a missing image: reported by image_found instead
    table["bottom_margin"] = height - table["y_max"]
    return table


def box_expectations(rules: BoxRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    inside = "box inside its image: 0 <= x_min, y_min and x_max <= width, y_max <= height"
    return [
        E.ExpectColumnValuesToBeInSet(
            column="image_found", value_set=[True], meta={"explain": f"the image must exist in {IMAGES}/"}
        ),
        E.ExpectColumnValuesToBeInSet(
            column="image_decodable", value_set=[True], meta={"explain": "the image must decode"}
        ),
        *[
            E.ExpectColumnValuesToNotBeNull(column=c, meta={"explain": "coordinates must be numbers"})
            for c in COORDINATES
        ],
        E.ExpectColumnValuesToBeBetween(column="x_min", min_value=0, meta={"explain": inside}),
        E.ExpectColumnValuesToBeBetween(column="y_min", min_value=0, meta={"explain": inside}),
        E.ExpectColumnValuesToBeBetween(column="right_margin", min_value=0, meta={"explain": inside}),
        E.ExpectColumnValuesToBeBetween(column="bottom_margin", min_value=0, meta={"explain": inside}),
        E.ExpectColumnValuesToBeBetween(
            column="box_width", min_value=0, strict_min=True, meta={"explain": "x_min < x_max"}
        ),
        E.ExpectColumnValuesToBeBetween(
            column="box_height", min_value=0, strict_min=True, meta={"explain": "y_min < y_max"}
        ),
        E.ExpectColumnValuesToBeInSet(
            column="class",
            value_set=list(rules.classes),
            meta={"explain": f"class must be one of {list(rules.classes)}"},
        ),
    ]


def image_expectations(rules: BoxRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableRowCountToBeBetween(
            min_value=rules.min_images, meta={"explain": f"at least {rules.min_images} images"}
        ),
        E.ExpectColumnValuesToBeInSet(column="decodable", value_set=[True], meta={"explain": "image must decode"}),
        *image_size_expectations(rules.min_size, rules.max_size),
    ]


def class_count_expectations(rules: BoxRules) -> list:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="boxes",
            min_value=rules.min_boxes_per_class,
            meta={"explain": f"each class needs at least {rules.min_boxes_per_class} boxes to learn from"},
        )
    ]


def validate_box_folder(root: str | Path, rules: BoxRules) -> tuple[ValidationReport, pd.DataFrame, pd.DataFrame]:
    """Read and validate ``root``; returns the report, the box table and the image table. Raises
    DataValidationError naming the CSV lines (with their image) and image files that failed."""
    root = Path(root)
    boxes, images = read_boxes(root), scan_images(root)
    context = _context()
    table = box_table(boxes, images)
    outcomes = run_suite(table, box_expectations(rules), name="boxes", id_column="line", context=context)
    rows = table.set_index("line")
    for o in outcomes:  # "boxes.csv line 7 (0003.jpg)" says where to look
        o.failing = [
            f"{BOXES_FILE} line {i} ({rows.loc[int(i), 'image']})" if str(i).isdigit() else i for i in o.failing
        ]
    image_outcomes = run_suite(images, image_expectations(rules), name="images", id_column="image", context=context)
    errors = dict(zip(images["image"], images["error"]))
    for o in image_outcomes:
        o.failing = [f"{IMAGES}/{n}" + (f" ({errors[n]})" if errors.get(n) else "") for n in o.failing]
    counts = boxes["class"].value_counts()
    per_class = pd.DataFrame({"class": list(rules.classes), "boxes": [int(counts.get(c, 0)) for c in rules.classes]})
    outcomes += image_outcomes + run_suite(
        per_class, class_count_expectations(rules), name="box-classes", id_column="class", context=context
    )
    report = ValidationReport(str(root), outcomes, len(table))
    if not report.success:
        raise DataValidationError(report)
    return report, boxes, images


def load_detection_set(
    root: str | Path, names: list[str], boxes: pd.DataFrame, classes: tuple[str, ...], size: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """RGB uint8 images resized to (size, size, 3), and per image its boxes as a float array (K, 5) of
    ``x_min, y_min, x_max, y_max, class index`` scaled to the resized image."""
    root = Path(root)
    index = {c: k for k, c in enumerate(classes)}
    by_image = dict(tuple(boxes.groupby("image")))
    images, targets = [], []
    for name in names:
        with Image.open(root / IMAGES / name) as im:
            x = rgb8(im)
            sx, sy = size / x.width, size / x.height
            images.append(np.asarray(x if x.size == (size, size) else x.resize((size, size), Image.BILINEAR)))
        rows = by_image.get(name)
        if rows is None:
            targets.append(np.zeros((0, 5), dtype=np.float32))
            continue
        xyxy = rows[list(COORDINATES)].to_numpy(np.float64) * np.array([sx, sy, sx, sy])
        targets.append(np.column_stack([xyxy, rows["class"].map(index).to_numpy()]).astype(np.float32))
    return np.stack(images), targets
