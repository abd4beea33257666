"""Style-transfer data in its real format: a folder of content images and a folder of style images.

    <root>/content/<name>.jpg|png    photos to restyle
    <root>/style/<name>.jpg|png      paintings / textures whose style is transferred
    <root>/pairs.csv                 optional: columns content,style (file names); without it every content
                                     image is paired with every style image

The offline sample is real photos bundled with scikit-image (astronaut, chelsea, coffee as content; the brick
texture and the immunohistochemistry stain micrograph as styles), centre-cropped and resized to 128 px, written
as PNGs: the same bytes on every run. Validation describes the folder as a table, one row per file (and one per
pairs.csv line), and runs GX suites over it, so a broken or tiny image or a pair naming a missing file is
reported by its path or line.
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

CONTENT, STYLE, PAIRS_FILE = "content", "style", "pairs.csv"
SUFFIXES = {".jpg", ".jpeg", ".png"}
SAMPLE_CONTENT = ("astronaut", "chelsea", "coffee")
SAMPLE_STYLE = ("brick", "immunohistochemistry")


def square(image: np.ndarray, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3): grey or RGBA converted, the centred square crop resized with Lanczos."""
    im = Image.fromarray(np.asarray(image)).convert("RGB")
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    im = im.crop((left, top, left + side, top + side))
    return np.asarray(im if side == size else im.resize((size, size), Image.LANCZOS))


def generate(out_dir: str | Path, size: int = 128) -> dict[str, int]:
    import skimage.data

    out_dir = Path(out_dir)
    for role, names in ((CONTENT, SAMPLE_CONTENT), (STYLE, SAMPLE_STYLE)):
        (out_dir / role).mkdir(parents=True, exist_ok=True)
        for name in names:
            Image.fromarray(square(getattr(skimage.data, name)(), size)).save(out_dir / role / f"{name}.png")
    return {"content": len(SAMPLE_CONTENT), "style": len(SAMPLE_STYLE)}


def load_image(path: str | Path, size: int) -> np.ndarray:
    with Image.open(path) as im:
        return square(np.asarray(rgb8(im)), size)


# --- scanning ----------------------------------------------------------------------------------------------


def scan_folder(root: str | Path) -> pd.DataFrame:
    """One row per file in ``content/`` and ``style/``: path, role, name, decodable, width, height, error.
    Nothing is skipped except hidden files: a stray file shows up as a row that fails validation."""
    root = Path(root)
    missing = [str(root / r) for r in (CONTENT, STYLE) if not (root / r).is_dir()]
    if missing:
        raise MissingDataError(
            f"style-transfer data needs {' and '.join(missing)}: run `dlfolio data style-transfer` "
            f"for the offline sample, or put photos in {root}/content/ and style images in "
            f"{root}/style/ (jpg or png)"
        )
    rows = []
    for role in (CONTENT, STYLE):
        for path in sorted(p for p in (root / role).iterdir() if p.is_file() and not p.name.startswith(".")):
            row = {
                "path": f"{role}/{path.name}",
                "role": role,
                "name": path.name,
                "decodable": False,
                "width": None,
                "height": None,
                "error": "",
            }
            if path.suffix.lower() not in SUFFIXES:
                row["error"] = f"not a jpg or png file ({path.suffix or 'no suffix'})"
            else:
                try:
                    with Image.open(path) as im:
                        im.load()  # verify() misses truncated pixel data; load() decodes it all
                        row.update(decodable=True, width=im.width, height=im.height)
                except (UnidentifiedImageError, OSError, ValueError) as exc:
                    row["error"] = f"cannot decode: {exc}"
            rows.append(row)
    return pd.DataFrame(rows, columns=["path", "role", "name", "decodable", "width", "height", "error"])


def read_pairs(root: str | Path, manifest: pd.DataFrame) -> pd.DataFrame:
    """The (content, style) pairs to optimise, by file name, with the pairs.csv line each came from (0 when
    every content image is paired with every style image)."""
    root = Path(root)
    names = {role: manifest.loc[manifest["role"] == role, "name"].tolist() for role in (CONTENT, STYLE)}
    path = root / PAIRS_FILE
    if not path.is_file():
        return pd.DataFrame(
            [{"line": 0, CONTENT: c, STYLE: s} for c in names[CONTENT] for s in names[STYLE]],
            columns=["line", CONTENT, STYLE],
        )
    table = read_csv_table(path, dtype=str, keep_default_na=False)
    if list(table.columns) != [CONTENT, STYLE]:
        raise DataFormatError(f"{path}: expected the header 'content,style', got {','.join(table.columns)}")
    table.insert(0, "line", range(2, len(table) + 2))  # line 1 is the header
    return table


# --- validation --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StyleRules:
    min_size: int = 32
    max_size: int = 8192


def file_expectations(rules: StyleRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectColumnValuesToBeInSet(
            column="decodable", value_set=[True], meta={"explain": "file must decode as a jpg or png image"}
        ),
        *image_size_expectations(rules.min_size, rules.max_size),
    ]


def role_expectations() -> list:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="count", min_value=1, meta={"explain": "content/ and style/ each need at least one image"}
        )
    ]


def pair_expectations() -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableRowCountToBeBetween(min_value=1, meta={"explain": "at least one (content, style) pair"}),
        E.ExpectColumnValuesToBeInSet(
            column="content_found",
            value_set=[True],
            meta={"explain": "pairs.csv names a content image not in content/"},
        ),
        E.ExpectColumnValuesToBeInSet(
            column="style_found", value_set=[True], meta={"explain": "pairs.csv names a style image not in style/"}
        ),
    ]


def validate_style_folder(root: str | Path, rules: StyleRules) -> tuple[ValidationReport, pd.DataFrame, pd.DataFrame]:
    """Scan and validate ``root``; returns the report, the file manifest and the pairs. Raises
    DataValidationError naming the files, folders or pairs.csv lines that failed."""
    root = Path(root)
    manifest = scan_folder(root)
    context = _context()
    outcomes = []
    if len(manifest):
        outcomes += run_suite(manifest, file_expectations(rules), name="style-files", id_column="path", context=context)
        errors = dict(zip(manifest["path"], manifest["error"]))
        for o in outcomes:  # a corrupt file names its decoder error next to its path
            o.failing = [f"{p} ({errors[p]})" if errors.get(p) else p for p in o.failing]
    counts = manifest["role"].value_counts()
    roles = pd.DataFrame(
        {"folder": [f"{r}/" for r in (CONTENT, STYLE)], "count": [int(counts.get(r, 0)) for r in (CONTENT, STYLE)]}
    )
    outcomes += run_suite(roles, role_expectations(), name="style-folders", id_column="folder", context=context)
    pairs = read_pairs(root, manifest)
    table = pairs.assign(
        id=[
            f"{PAIRS_FILE} line {n}: {c},{s}" if n else f"{c} x {s}"
            for n, c, s in zip(pairs["line"], pairs[CONTENT], pairs[STYLE])
        ],
        content_found=pairs[CONTENT].isin(manifest.loc[manifest["role"] == CONTENT, "name"]),
        style_found=pairs[STYLE].isin(manifest.loc[manifest["role"] == STYLE, "name"]),
    )
    outcomes += run_suite(table, pair_expectations(), name="style-pairs", id_column="id", context=context)
    report = ValidationReport(str(root), outcomes, len(manifest))
    if not report.success:
        raise DataValidationError(report)
    return report, manifest, pairs
