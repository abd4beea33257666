"""Name lists in their real format: a UTF-8 text file with one name per line (like the dinosaur-names file).

The offline sample is the 1990 US Census first names bundled with the ``names`` package (male and female
lists; the first column is the name), lowercased, deduplicated and sorted: the same bytes on every run.
Validation describes the file as a table, one row per line, and runs a GX suite over it, so a bad line is
reported by its line number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from components.data.formats.text_lines import read_utf8_lines
from components.validation.expectations import DataValidationError, ValidationReport, run_suite

CENSUS_FILES = ("dist.male.first", "dist.female.first")


def census_first_names() -> list[str]:
    import names

    folder = Path(names.__file__).parent
    found = set()
    for file in CENSUS_FILES:
        for line in (folder / file).read_text().splitlines():
            if line.strip():
                found.add(line.split()[0].lower())
    return sorted(found)


def generate(out_dir: str | Path, file: str = "names.txt") -> dict[str, int]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    first = census_first_names()
    (out_dir / file).write_text("".join(n + "\n" for n in first), encoding="utf-8")
    return {"names": len(first)}


def read_lines(path: str | Path, project: str = "numpy-rnn") -> list[str]:
    """Every line of the names file without its line ending."""
    return read_utf8_lines(
        path, f"run `dlfolio data {project}` for the offline sample, or put your names there, one per line (UTF-8)"
    )


@dataclass(frozen=True)
class NameRules:
    alphabet: str  # every character a name may contain
    min_length: int = 1
    max_length: int = 30
    min_names: int = 100


def names_table(lines: list[str], lowercase: bool) -> pd.DataFrame:
    names = [line.strip().lower() if lowercase else line.strip() for line in lines]
    return pd.DataFrame({"line": range(1, len(lines) + 1), "name": names})


def name_expectations(rules: NameRules) -> list:
    import re

    import great_expectations as gx

    E = gx.expectations
    allowed = "".join(re.escape(c) for c in rules.alphabet)
    return [
        E.ExpectTableRowCountToBeBetween(
            min_value=rules.min_names, meta={"explain": f"at least {rules.min_names} names to learn from"}
        ),
        E.ExpectColumnValueLengthsToBeBetween(
            column="name",
            min_value=rules.min_length,
            max_value=rules.max_length,
            meta={"explain": f"name length in [{rules.min_length}, {rules.max_length}] (an empty line fails here)"},
        ),
        E.ExpectColumnValuesToMatchRegex(
            column="name", regex=f"^[{allowed}]*$", meta={"explain": f"only characters in {rules.alphabet!r}"}
        ),
        E.ExpectColumnValuesToBeUnique(
            column="name", meta={"explain": "duplicate names would leak between train and test"}
        ),
    ]


def validate_names(
    path: str | Path, rules: NameRules, lowercase: bool = True, project: str = "numpy-rnn"
) -> tuple[ValidationReport, list[str]]:
    """Read and validate a names file; returns the report and the names. Raises DataValidationError naming
    the failing line numbers."""
    table = names_table(read_lines(path, project), lowercase)
    outcomes = run_suite(table, name_expectations(rules), name="names", id_column="line")
    for o in outcomes:  # "line 7" reads better than "7", and the name itself tells what is wrong
        o.failing = [f"line {i}: {table['name'].iloc[int(i) - 1]!r}" if str(i).isdigit() else i for i in o.failing]
    report = ValidationReport(str(path), outcomes, len(table))
    if not report.success:
        raise DataValidationError(report)
    return report, table["name"].tolist()
