"""Labelled 2-D point sets as CSV files ``train.csv`` and ``test.csv`` with the header ``x1,x2,label``.

The format of numpy-dnn's point-set studies (``data.format: points``). Its offline sample is GENERATED, not
recorded: ``generate_football`` draws positions on a pitch like the course's "football positions" set (where
the French goalkeeper kicked the ball: a dot is where a player headed it, 1 = a French player, 0 = the other
team), 211 training and 200 test points labelled by a wavy line across the pitch with 8% of the labels flipped,
so a large unregularised net overfits and L2 or dropout smooths its boundary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.errors import format_error, read_csv_table
from components.data.formats.images import MissingDataError
from components.validation.expectations import DataValidationError, ValidationReport, run_suite

COLUMNS = ("x1", "x2", "label")
FILES = {"train": "train.csv", "test": "test.csv"}
FOOTBALL_CLASSES = ("other team", "France")


def football_positions(n: int, rng: np.random.Generator, flip: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """``n`` generated positions in [-0.75, 0.75]^2 and their labels (1 above a wavy line across the pitch)."""
    X = rng.uniform(-0.75, 0.75, size=(n, 2))
    y = (X[:, 1] > 0.3 * np.sin(3.5 * X[:, 0]) + 0.15 * X[:, 0]).astype(int)
    flipped = rng.random(n) < flip
    return X, np.where(flipped, 1 - y, y)


def generate_football(out_dir: str | Path, train: int = 211, test: int = 200, seed: int = 3) -> dict[str, int]:
    """Write the generated football-positions set (train.csv, test.csv); the same bytes on every machine."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {"train": train, "test": test}
    for split, name in FILES.items():
        X, y = football_positions(counts[split], rng)
        rows = ["x1,x2,label", *(f"{a:.4f},{b:.4f},{c}" for (a, b), c in zip(X, y))]
        (out_dir / name).write_text("\n".join(rows) + "\n")
    return counts


def read_points(path: str | Path) -> pd.DataFrame:
    """Columns ``line`` (line number in the file), ``x1``, ``x2``, ``label``; a cell that is not a number becomes
    NaN here and is reported by validation with its line number."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path} does not exist: expected a CSV with header 'x1,x2,label'")
    raw = read_csv_table(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise format_error(
            str(path),
            "expect_table_columns_to_include",
            f"missing column(s) {missing}; found {list(raw.columns)}; expected header 'x1,x2,label'",
        )
    table = pd.DataFrame({"line": np.arange(2, len(raw) + 2)})
    for column in COLUMNS:
        table[column] = pd.to_numeric(raw[column].str.strip(), errors="coerce").astype("float64")
    return table


def point_expectations(n_classes: int, min_rows: int) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableRowCountToBeBetween(min_value=min_rows, meta={"explain": f"at least {min_rows} points"}),
        *(E.ExpectColumnValuesToNotBeNull(column=c, meta={"explain": f"{c} must be a number"}) for c in COLUMNS),
        E.ExpectColumnValuesToBeInSet(
            column="label",
            value_set=[float(i) for i in range(n_classes)],
            meta={"explain": f"label is an integer 0..{n_classes - 1} (data.class_names)"},
        ),
    ]


def validate_points(root: str | Path, n_classes: int, min_rows: int) -> ValidationReport:
    """Both files checked; the first failing one raises with its CSV line numbers."""
    reports = []
    for name in FILES.values():
        path = Path(root) / name
        table = read_points(path)
        outcomes = run_suite(table, point_expectations(n_classes, min_rows), name="points", id_column="line")
        for o in outcomes:
            o.failing = [f"line {line}" for line in o.failing]
        report = ValidationReport(str(path), outcomes, len(table))
        if not report.success:
            raise DataValidationError(report)
        reports.append(report)
    return ValidationReport(str(root), [o for r in reports for o in r.outcomes], sum(r.rows for r in reports))


def load_points(root: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test): float64 (N, 2) positions and int labels."""
    parts = []
    for name in FILES.values():
        table = read_points(Path(root) / name)
        parts += [table[["x1", "x2"]].to_numpy(np.float64), table["label"].to_numpy().astype(int)]
    return tuple(parts)
