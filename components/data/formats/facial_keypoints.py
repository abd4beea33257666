"""Facial keypoints in their real format: Kaggle's "Facial Keypoints Detection" ``training.csv``.

One row per face: 30 coordinate columns (x and y of 15 keypoints, in pixels of the 96x96 image, pixel centres at
integer coordinates, "left" meaning the person's left, on the image's right) and ``Image``, the 9216 grey levels
(0-255) separated by spaces, row by row. Many rows give only a few keypoints: the other columns are empty.
Kaggle ships the file zipped (``training.zip``); pandas reads either form.

Validation describes the file as a table, one row per face (its line in the file, how many pixel values, their
range, each coordinate), and runs a GX suite over it, so a bad face is reported by its line number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.errors import read_csv_table
from components.data.formats.images import MissingDataError
from components.projects.settings.facial_keypoints import KEYPOINTS  # defined with the settings that name them
from components.validation.expectations import DataValidationError, ExpectationOutcome, ValidationReport, run_suite

SIZE = 96
COORDINATES = tuple(f"{k}_{axis}" for k in KEYPOINTS for axis in "xy")
COLUMNS = (*COORDINATES, "Image")
# The four keypoints that most rows of the Kaggle file have; the other eleven are often missing.
COMMON = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip")


def mirrored_keypoint_order() -> np.ndarray:
    """Index of each keypoint's mirror image: left_* <-> right_*; nose tip and lip centres map to themselves."""

    def mirror(name: str) -> str:
        return name.replace("left", "@").replace("right", "left").replace("@", "right")

    return np.array([KEYPOINTS.index(mirror(k)) for k in KEYPOINTS])


def resolve_file(data_dir: str | Path, file: str) -> Path:
    """``data_dir/file``; for ``training.csv`` Kaggle's ``training.zip`` is accepted as well."""
    path = Path(data_dir) / file
    if path.is_file():
        return path
    zipped = path.with_suffix(".zip")
    if path.suffix == ".csv" and zipped.is_file():
        return zipped
    raise MissingDataError(
        f"keypoints file {path} does not exist: run `dlfolio data facial-keypoints` for the offline "
        f"sample, or put Kaggle's training.csv (or training.zip) from the Facial Keypoints "
        f"Detection competition there"
    )


def read_table(path: str | Path) -> pd.DataFrame:
    """The CSV as strings (coordinates parsed later, so a bad value is reported, not silently dropped)."""
    return read_csv_table(path, dtype=str, keep_default_na=False)


def parse_image(text: str) -> np.ndarray | None:
    """The grey levels of one ``Image`` cell as int64, or None if a value is not an integer."""
    try:
        return np.array(text.split(), dtype=np.int64)
    except ValueError:
        return None


def face_table(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per face: its line in the file, numeric coordinates (NaN where empty) and pixel statistics."""
    table = pd.DataFrame({"line": np.arange(2, len(raw) + 2)})  # line 1 is the header
    for column in raw.columns:
        if column == "Image":
            images = [parse_image(s) for s in raw["Image"]]
            table["image_values"] = [-1 if x is None else len(x) for x in images]
            # No range for an image that does not parse: image_values already reports it, once.
            table["image_min"] = [np.nan if x is None or not len(x) else float(x.min()) for x in images]
            table["image_max"] = [np.nan if x is None or not len(x) else float(x.max()) for x in images]
        elif column in COORDINATES:
            table[column] = pd.to_numeric(raw[column].replace("", np.nan), errors="coerce")
            # A value that is there but not a number becomes -1: out of range, so the line gets reported.
            table.loc[table[column].isna() & (raw[column] != ""), column] = -1.0
    if set(COORDINATES) <= set(table.columns):
        table["complete"] = table[list(COORDINATES)].notna().all(axis=1).astype(int)
    return table


@dataclass(frozen=True)
class KeypointRules:
    min_complete_rows: int = 100  # faces with all 15 keypoints


def face_expectations(rules: KeypointRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    expectations = [
        E.ExpectColumnValuesToBeBetween(
            column="image_values",
            min_value=SIZE * SIZE,
            max_value=SIZE * SIZE,
            meta={
                "explain": f"Image must hold exactly {SIZE * SIZE} integers "
                f"({SIZE}x{SIZE}); -1 means a value is not an integer"
            },
        ),
        E.ExpectColumnValuesToBeBetween(column="image_min", min_value=0, meta={"explain": "grey levels >= 0"}),
        E.ExpectColumnValuesToBeBetween(column="image_max", max_value=255, meta={"explain": "grey levels <= 255"}),
        E.ExpectColumnSumToBeBetween(
            column="complete",
            min_value=rules.min_complete_rows,
            meta={"explain": f"at least {rules.min_complete_rows} faces with all 15 keypoints"},
        ),
    ]
    # Empty cells are missing keypoints (GX skips nulls); a present one must lie in the image.
    expectations += [
        E.ExpectColumnValuesToBeBetween(
            column=c, min_value=0, max_value=SIZE, meta={"explain": f"in [0, {SIZE}] px (or empty)"}
        )
        for c in COORDINATES
    ]
    return expectations


def validate_keypoints_file(path: str | Path, rules: KeypointRules) -> tuple[ValidationReport, pd.DataFrame]:
    """Validate the file; returns the report and the face table. Raises DataValidationError naming bad lines."""
    raw = read_table(path)
    table = face_table(raw)
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:  # nothing else can be checked on a file without these columns
        outcome = ExpectationOutcome(
            "expect_table_columns_to_match_set",
            "",
            False,
            f"the file must have the 31 columns of Kaggle's training.csv; missing {missing}",
        )
        raise DataValidationError(ValidationReport(str(path), [outcome], len(raw)))
    outcomes = run_suite(table, face_expectations(rules), name="facial-keypoints", id_column="line")
    for o in outcomes:
        o.failing = [f"line {i}" if str(i).isdigit() else i for i in o.failing]
    report = ValidationReport(str(path), outcomes, len(table))
    if not report.success:
        raise DataValidationError(report)
    return report, table


def load_keypoints(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 96, 96) and coordinates float32 (N, 30) in COORDINATES order, NaN where missing."""
    raw = read_table(path)
    images = np.stack([parse_image(s) for s in raw["Image"]]).astype(np.uint8).reshape(-1, SIZE, SIZE)
    coords = raw[list(COORDINATES)].replace("", np.nan).astype(np.float32).to_numpy()
    return images, coords


def image_strings(images: np.ndarray) -> list[str]:
    """Images (N, 96, 96) as Kaggle's ``Image`` cells."""
    return [" ".join(map(str, x.ravel().tolist())) for x in np.asarray(images, dtype=np.uint8)]


def to_frame(images: np.ndarray, coords: np.ndarray) -> pd.DataFrame:
    """The Kaggle layout: 30 coordinate columns (empty where NaN) and ``Image``."""
    frame = pd.DataFrame(np.asarray(coords, dtype=np.float64), columns=list(COORDINATES))
    frame["Image"] = image_strings(images)
    return frame
