"""Image datasets held as arrays (MNIST IDX, h5): describe them as small tables and validate those with GX.

An array dataset is a few named parts, e.g. ``{"train": (X, y), "test": (X, y)}`` with X uint8 (N, H, W, C)
and y integer labels. ``describe_parts`` makes one row per part (counts, shape, dtype, pixel range, blank
images); ``label_table`` one row per (part, label). The GX suites over those tables name the part (the file
and key it came from) and the label that is wrong, e.g. ``expect_column_values_to_be_in_set(height) failed:
images are 28 px high -> train (train-images-idx3-ubyte.gz)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from components.errors import DataFormatError
from components.validation.expectations import DataValidationError, ValidationReport, _context, run_suite


class ArrayFormatError(DataFormatError):
    """An array file is readable but not in the layout the project expects (missing key, wrong shape)."""


@dataclass(frozen=True)
class ArrayRules:
    labels: tuple[int, ...]
    height: int
    width: int
    channels: int
    min_per_class: int = 1
    min_class_share: float = 0.0  # within each part: 0.05 means no label below 5% of that part


@dataclass
class ArrayPart:
    """One split of an array dataset, with where it came from (for messages)."""

    images: np.ndarray
    labels: np.ndarray
    source: str = ""
    declared_labels: tuple[int, ...] | None = None  # e.g. an h5 file's list_classes


def describe_parts(parts: Mapping[str, ArrayPart]) -> pd.DataFrame:
    rows = []
    for name, part in parts.items():
        X, y = part.images, part.labels
        flat = X.reshape(len(X), -1) if len(X) else X.reshape(0, 1)
        rows.append(
            {
                "part": f"{name} ({part.source})" if part.source else name,
                "images": len(X),
                "labels": len(y),
                "counts_match": len(X) == len(y),
                "ndim": X.ndim,
                "height": X.shape[1] if X.ndim == 4 else None,
                "width": X.shape[2] if X.ndim == 4 else None,
                "channels": X.shape[3] if X.ndim == 4 else None,
                "dtype": str(X.dtype),
                "label_dtype_integer": bool(np.issubdtype(y.dtype, np.integer)),
                "pixel_min": float(flat.min()) if flat.size else None,
                "pixel_max": float(flat.max()) if flat.size else None,
                # A constant image (all black, all white) is a broken decode or a padding row, never a sample.
                "blank_images": int((flat.min(axis=1) == flat.max(axis=1)).sum()) if flat.size else 0,
                "declared_labels": str(list(part.declared_labels)) if part.declared_labels is not None else "",
            }
        )
    return pd.DataFrame(rows)


def part_expectations(rules: ArrayRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    declared = str(list(rules.labels))
    return [
        E.ExpectColumnValuesToBeBetween(column="images", min_value=1, meta={"explain": "part holds images"}),
        E.ExpectColumnValuesToBeInSet(
            column="counts_match", value_set=[True], meta={"explain": "as many labels as images"}
        ),
        E.ExpectColumnValuesToBeInSet(column="ndim", value_set=[4], meta={"explain": "images are (N, H, W, C)"}),
        E.ExpectColumnValuesToBeInSet(
            column="height", value_set=[rules.height], meta={"explain": f"images are {rules.height} px high"}
        ),
        E.ExpectColumnValuesToBeInSet(
            column="width", value_set=[rules.width], meta={"explain": f"images are {rules.width} px wide"}
        ),
        E.ExpectColumnValuesToBeInSet(
            column="channels", value_set=[rules.channels], meta={"explain": f"images have {rules.channels} channel(s)"}
        ),
        E.ExpectColumnValuesToBeInSet(column="dtype", value_set=["uint8"], meta={"explain": "pixels are uint8"}),
        E.ExpectColumnValuesToBeInSet(
            column="label_dtype_integer", value_set=[True], meta={"explain": "labels are integers"}
        ),
        E.ExpectColumnValuesToBeBetween(
            column="pixel_max",
            min_value=1,
            max_value=255,
            meta={"explain": "pixel values in [0, 255] and not all zero"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="blank_images", max_value=0, meta={"explain": "no constant (blank) images"}
        ),
        E.ExpectColumnValuesToBeInSet(
            column="declared_labels", value_set=["", declared], meta={"explain": f"the file's class list is {declared}"}
        ),
    ]


def label_table(parts: Mapping[str, ArrayPart], rules: ArrayRules) -> pd.DataFrame:
    """One row per (part, label): every expected label, plus any unexpected label found."""
    rows = []
    for name, part in parts.items():
        values, counts = np.unique(np.asarray(part.labels).ravel(), return_counts=True)
        found = dict(zip(values.tolist(), counts.tolist()))
        total = max(1, int(counts.sum()))
        for label in sorted(set(rules.labels) | set(found)):
            count = int(found.get(label, 0))
            rows.append(
                {
                    "part_label": f"{name}: label {label}",
                    "known": label in rules.labels,
                    "count": count,
                    "share": count / total,
                }
            )
    return pd.DataFrame(rows)


def label_expectations(rules: ArrayRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectColumnValuesToBeInSet(
            column="known", value_set=[True], meta={"explain": f"labels must be in {list(rules.labels)}"}
        ),
        E.ExpectColumnValuesToBeBetween(
            column="count",
            min_value=rules.min_per_class,
            meta={"explain": f"each label needs at least {rules.min_per_class} image(s)"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="share",
            min_value=rules.min_class_share,
            meta={"explain": f"class balance: each label at least {rules.min_class_share:.0%} of its part"},
        ),
    ]


def validate_arrays(dataset: str, parts: Mapping[str, ArrayPart], rules: ArrayRules) -> ValidationReport:
    """Validate the parts of an array dataset; raises ``DataValidationError`` listing what failed."""
    context = _context()
    outcomes = run_suite(
        describe_parts(parts), part_expectations(rules), name="array-parts", id_column="part", context=context
    )
    outcomes += run_suite(
        label_table(parts, rules),
        label_expectations(rules),
        name="array-labels",
        id_column="part_label",
        context=context,
    )
    report = ValidationReport(dataset, outcomes, sum(len(p.labels) for p in parts.values()))
    if not report.success:
        raise DataValidationError(report)
    return report
