"""Images labelled by a CSV file, as in the State Farm distracted-driver dataset:

    <root>/driver_imgs_list.csv       subject,classname,img      (p002,c0,img_44733.jpg)
    <root>/imgs/train/<classname>/<img>

and which subjects two parts of a split share (none, for ``components.data.splits.grouped_split``): a model that
saw a driver in training would otherwise be scored on the same person's photos, and the test figure would
measure recognition of people.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.errors import read_csv_table
from components.data.formats.images import MissingDataError

COLUMNS = ("subject", "classname", "img")


def read_image_csv(
    root: str | Path, csv_name: str = "driver_imgs_list.csv", images_dir: str = "imgs/train"
) -> pd.DataFrame:
    """The CSV's rows with ``row`` (its line in the file), ``path`` (relative to the images dir) and ``exists``.

    Columns are kept as written (strings); the validation stage says which rows break which expectation.
    """
    root = Path(root)
    file = root / csv_name
    if not file.is_file():
        raise MissingDataError(
            f"metadata file {file} not found: run `dlfolio data` for the offline sample, or put "
            f"your CSV ({','.join(COLUMNS)}) there and the images in {root / images_dir}/<classname>/"
        )
    table = read_csv_table(file, dtype=str, keep_default_na=False, na_values=[""])
    table.insert(0, "row", [f"{csv_name}:{i + 2}" for i in range(len(table))])  # line 1 is the header
    if set(COLUMNS) <= set(table.columns):
        table["path"] = table["classname"].fillna("").str.cat(table["img"].fillna(""), sep="/")
        table["exists"] = [(root / images_dir / p).is_file() for p in table["path"]]
    return table


def subject_overlap(groups: np.ndarray, split: dict[str, np.ndarray]) -> dict[tuple[str, str], set]:
    """Subjects found in two parts of ``split``: empty when the split is leak-free."""
    members = {name: set(np.asarray(groups)[idx]) for name, idx in split.items()}
    names = list(members)
    return {
        (a, b): members[a] & members[b] for i, a in enumerate(names) for b in names[i + 1 :] if members[a] & members[b]
    }


def csv_expectations(classes: tuple[str, ...]) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableColumnsToMatchSet(
            column_set=list(COLUMNS), exact_match=False, meta={"explain": f"the CSV needs columns {','.join(COLUMNS)}"}
        ),
        E.ExpectColumnValuesToNotBeNull(column="subject", meta={"explain": "every image needs its subject"}),
        E.ExpectColumnValuesToNotBeNull(column="img", meta={"explain": "every row needs an image file name"}),
        E.ExpectColumnValuesToBeInSet(
            column="classname", value_set=list(classes), meta={"explain": f"classname must be one of {list(classes)}"}
        ),
        E.ExpectColumnValuesToBeInSet(
            column="exists",
            value_set=[True],
            meta={"explain": "the image file <images_dir>/<classname>/<img> must exist"},
        ),
        E.ExpectColumnValuesToBeUnique(column="path", meta={"explain": "an image listed twice"}),
    ]


def validate_image_csv(
    root: str | Path,
    rules,
    *,
    csv_name: str = "driver_imgs_list.csv",
    images_dir: str = "imgs/train",
    min_subjects: int = 3,
):
    """GX suites over the CSV rows, the image files and the classes; returns (report, table). Raises on failure.

    CSV rows are named by their line (``driver_imgs_list.csv:7``), image files by their path.
    """
    from components.data.formats.images import scan_image_folder
    from components.validation.expectations import (
        DataValidationError,
        ValidationReport,
        _context,
        class_expectations,
        class_table,
        image_manifest_expectations,
        run_suite,
    )

    root = Path(root)
    table = read_image_csv(root, csv_name, images_dir)
    context = _context()
    outcomes = run_suite(table, csv_expectations(rules.classes), name="image-csv", id_column="row", context=context)
    if not set(COLUMNS) <= set(table.columns):  # nothing else can be checked without the columns
        report = ValidationReport(str(root / csv_name), outcomes, len(table))
        raise DataValidationError(report)
    manifest = scan_image_folder(root / images_dir)
    manifest["listed"] = manifest["path"].isin(set(table["path"]))
    import great_expectations as gx

    file_expectations = [
        *image_manifest_expectations(rules),
        gx.expectations.ExpectColumnValuesToBeInSet(
            column="listed", value_set=[True], meta={"explain": f"every image file must have a row in {csv_name}"}
        ),
    ]
    outcomes += run_suite(manifest, file_expectations, name="image-files", id_column="path", context=context)
    outcomes += run_suite(
        class_table(table["classname"], rules.classes),
        class_expectations(rules),
        name="classes",
        id_column="label",
        context=context,
    )
    subjects = pd.DataFrame({"subject": sorted(table["subject"].dropna().unique())})
    outcomes += run_suite(
        subjects,
        [
            gx.expectations.ExpectTableRowCountToBeBetween(
                min_value=min_subjects,
                meta={"explain": f"a split grouped by subject needs at least {min_subjects} subjects"},
            )
        ],
        name="subjects",
        id_column="subject",
        context=context,
    )
    report = ValidationReport(str(root / csv_name), outcomes, len(table))
    if not report.success:
        raise DataValidationError(report)
    return report, table
