"""Face images in the layout users bring for verification: ``root/<identity>/<image file>``, one folder a person.

Every file is checked as any image folder is (decodable, sizes, channels, no duplicate contents: GX suites in
``components.validation.expectations``), and every identity needs at least two images: one to enrol and one
to match against it, or two to make a same-person pair. A folder with one image is refused by its path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.images import load_images, scan_image_folder
from components.validation.expectations import (
    DataValidationError,
    ImageRules,
    ValidationReport,
    _context,
    image_manifest_expectations,
    run_suite,
)


@dataclass(frozen=True)
class IdentityRules:
    min_size: int = 16
    max_size: int = 4096
    min_images: int = 2  # per identity: a pair, or one enrolled and one queried
    min_identities: int = 6  # at least two each for training, validation and test


def identity_table(root: Path, manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per identity folder: its path and how many files it holds."""
    counts = manifest.loc[manifest["label"] != "", "label"].value_counts().sort_index()
    return pd.DataFrame({"folder": [str(root / name) for name in counts.index], "images": counts.to_numpy()})


def validate_identity_folder(root: str | Path, rules: IdentityRules) -> tuple[ValidationReport, pd.DataFrame]:
    """Scan ``root`` and validate it; returns the report and the manifest (one row per file, ``label`` = the
    identity). Raises ``DataValidationError`` listing the failed expectations."""
    import great_expectations as gx

    root = Path(root)
    manifest = scan_image_folder(root)
    identities = tuple(sorted(set(manifest["label"]) - {""}))
    context = _context()
    image_rules = ImageRules(identities, rules.min_size, rules.max_size)
    outcomes = run_suite(
        manifest.assign(file_name=manifest["path"].map(lambda p: Path(p).name)),
        image_manifest_expectations(image_rules),  # a file directly in root has label "" and fails "label"
        name="face-images",
        id_column="path",
        context=context,
    )
    errors = dict(zip(manifest["path"], manifest["error"]))
    for o in outcomes:
        o.failing = [f"{p} ({errors[p]})" if errors.get(p) else p for p in o.failing]
    E = gx.expectations
    outcomes += run_suite(
        identity_table(root, manifest),
        [
            E.ExpectColumnValuesToBeBetween(
                column="images",
                min_value=rules.min_images,
                meta={"explain": f"each identity folder needs at least {rules.min_images} images"},
            ),
            E.ExpectTableRowCountToBeBetween(
                min_value=rules.min_identities,
                meta={"explain": f"at least {rules.min_identities} identity folders (train, validation and test)"},
            ),
        ],
        name="identities",
        id_column="folder",
        context=context,
    )
    report = ValidationReport(str(root), outcomes, len(manifest))
    if not report.success:
        raise DataValidationError(report)
    return report, manifest


def load_identities(root: str | Path, size: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], list[str]]:
    """Every image as RGB uint8 (N, size, size, 3), its identity index (N,), the identity names (sorted) and
    each image's path relative to ``root``."""
    manifest = scan_image_folder(root)
    manifest = manifest[manifest["label"] != ""].sort_values("path").reset_index(drop=True)
    names = tuple(sorted(set(manifest["label"])))
    labels = manifest["label"].map({n: i for i, n in enumerate(names)}).to_numpy()
    return load_images(root, manifest, size), labels, names, manifest["path"].tolist()
