"""Celsius/Fahrenheit pairs in their real format, a CSV file with the header ``celsius,fahrenheit``.

The offline sample is generated: 160 Celsius readings in [-40, 60], converted exactly and then perturbed by
Gaussian "thermometer" noise (sd 1 F), from a fixed seed, rounded to two decimals so the bytes are the same on
every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.errors import format_error, read_csv_table
from components.data.formats.images import MissingDataError
from components.projects.settings.linear_regression import SAMPLE_FILE  # data.file's default

COLUMNS = ("celsius", "fahrenheit")


def generate(out_dir: str | Path, n: int = 160, noise_f: float = 1.0, seed: int = 2) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    celsius = np.round(rng.uniform(-40.0, 60.0, n), 2)
    fahrenheit = np.round(1.8 * celsius + 32.0 + rng.normal(0.0, noise_f, n), 2)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["celsius,fahrenheit", *(f"{c:.2f},{f:.2f}" for c, f in zip(celsius, fahrenheit))]
    (out_dir / SAMPLE_FILE).write_text("\n".join(lines) + "\n")
    return {"pairs": n}


def read_temperatures(path: str | Path) -> pd.DataFrame:
    """Columns ``line`` (line number in the file, for error messages), ``celsius``, ``fahrenheit``.

    A cell that is not a number becomes NaN here and is reported by validation with its line number."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(
            f"{path} does not exist: run `dlfolio data linear-regression` for the offline "
            f"sample, or put a CSV with header 'celsius,fahrenheit' there"
        )
    raw = read_csv_table(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise format_error(
            str(path),
            "expect_table_columns_to_include",
            f"missing column(s) {missing}; found {list(raw.columns)}; expected header 'celsius,fahrenheit'",
        )
    table = pd.DataFrame({"line": np.arange(2, len(raw) + 2)})
    for column in COLUMNS:
        table[column] = pd.to_numeric(raw[column].str.strip(), errors="coerce").astype("float64")
    return table
