"""Date translation pairs in their real format: a CSV (or a ``.tsv``) with columns ``human,machine``, e.g.
``"tuesday 10 july 2007",2007-07-10``.

The offline sample is generated from Python's ``datetime`` and fixed lists of formats and English month and
weekday names (no locale, no Faker), from a seeded generator: the same bytes on every run. Dates lie in
1950-2049, so a two-digit year is unambiguous (50-99 -> 19xx, 00-49 -> 20xx). Slashes are month first
(US, "5/30/68"), dots day first (European, "30.05.68"), as people write them.

Validation describes the file as a table, one row per data line, and runs a GX suite over it, so a bad
pair is reported by its line number in the file (the header is line 1).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.errors import read_csv_table
from components.data.formats.images import MissingDataError
from components.validation.expectations import DataValidationError, ValidationReport, run_suite

COLUMNS = ("human", "machine")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FIRST, LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)


def _fields(d: dt.date) -> dict[str, str]:
    month, weekday = MONTHS[d.month - 1], WEEKDAYS[d.weekday()]
    return {
        "d": str(d.day),
        "dd": f"{d.day:02d}",
        "m": str(d.month),
        "mm": f"{d.month:02d}",
        "yy": f"{d.year % 100:02d}",
        "yyyy": str(d.year),
        "month": month,
        "mon": month[:3],
        "Month": month.capitalize(),
        "Mon": month[:3].capitalize(),
        "weekday": weekday,
        "wkd": weekday[:3],
        "Weekday": weekday.capitalize(),
    }


# How people write a date; each is a str.format template over _fields.
FORMATS = (
    "{d} {month} {yyyy}",
    "{dd} {month} {yyyy}",
    "{d} {mon} {yyyy}",
    "{dd} {mon} {yyyy}",
    "{d} {Month} {yyyy}",
    "{d} {month}, {yyyy}",
    "{d} {mon}, {yyyy}",
    "{dd}, {mon} {yyyy}",
    "{d} {mon} {yy}",
    "{month} {d} {yyyy}",
    "{month} {d}, {yyyy}",
    "{Month} {d}, {yyyy}",
    "{mon} {d}, {yyyy}",
    "{Mon} {d}, {yyyy}",
    "{weekday} {d} {month} {yyyy}",
    "{Weekday} {d} {Month} {yyyy}",
    "{weekday}, {month} {d}, {yyyy}",
    "{wkd} {d} {mon} {yyyy}",
    "{weekday} {month} {d} {yyyy}",
    "{m}/{d}/{yy}",
    "{mm}/{dd}/{yy}",
    "{m}/{d}/{yyyy}",
    "{mm}/{dd}/{yyyy}",
    "{dd}.{mm}.{yy}",
    "{d}.{m}.{yyyy}",
    "{dd}.{mm}.{yyyy}",
    "{yyyy}-{mm}-{dd}",
)


def human_date(d: dt.date, template: str) -> str:
    return template.format(**_fields(d))


def generate_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` distinct (human, machine) pairs, dates uniform over 1950-2049, formats uniform over FORMATS."""
    rng = np.random.default_rng(seed)
    span = (LAST - FIRST).days + 1
    seen, rows = set(), []
    while len(rows) < n:
        d = FIRST + dt.timedelta(days=int(rng.integers(span)))
        human = human_date(d, FORMATS[int(rng.integers(len(FORMATS)))])
        if normalize(human) not in seen:  # a repeated input would sit in train and test at once
            seen.add(normalize(human))
            rows.append((human, d.isoformat()))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def generate(out_dir: str | Path, file: str = "dates.csv", n: int = 10_000, seed: int = 0) -> dict[str, int]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = generate_pairs(n, seed)
    write_pairs(pairs, out_dir / file)
    return {"pairs": len(pairs), "formats": len(FORMATS)}


def _separator(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def write_pairs(pairs: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    pairs.to_csv(path, sep=_separator(path), index=False, lineterminator="\n")


def read_pairs(path: str | Path) -> pd.DataFrame:
    """The file as strings, exactly as written (an empty field is "", not NaN), with a ``line`` column."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(
            f"pairs file {path} does not exist: run `dlfolio data nmt-dates` for the offline "
            f"sample, or put your pairs there as CSV with a header `human,machine`"
        )
    table = read_csv_table(path, sep=_separator(path), dtype=str, keep_default_na=False)
    table.insert(0, "line", range(2, len(table) + 2))  # line 1 is the header
    return table


def normalize(human: str) -> str:
    """What the model reads: case and surrounding spaces carry no date information."""
    return human.strip().lower()


@dataclass(frozen=True)
class PairRules:
    alphabet: str  # every character a (lowercased) human date may contain
    max_input_length: int = 30
    min_pairs: int = 100


def pair_expectations(rules: PairRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    allowed = "".join(re.escape(c) for c in rules.alphabet)
    return [
        E.ExpectTableRowCountToBeBetween(
            min_value=rules.min_pairs, meta={"explain": f"at least {rules.min_pairs} pairs to learn from"}
        ),
        E.ExpectColumnValueLengthsToBeBetween(
            column="human",
            min_value=1,
            max_value=rules.max_input_length,
            meta={"explain": f"human date of 1 to {rules.max_input_length} characters (an empty value fails here)"},
        ),
        E.ExpectColumnValuesToMatchRegex(
            column="human",
            regex=f"^[{allowed}]*$",
            meta={"explain": f"lowercased, only characters in {rules.alphabet!r}"},
        ),
        E.ExpectColumnValuesToBeUnique(
            column="human", meta={"explain": "a repeated input would leak between train and test"}
        ),
        E.ExpectColumnValuesToMatchRegex(
            column="machine", regex=r"^\d{4}-\d{2}-\d{2}$", meta={"explain": "target must be an ISO date YYYY-MM-DD"}
        ),
        E.ExpectColumnValuesToMatchStrftimeFormat(
            column="machine", strftime_format="%Y-%m-%d", meta={"explain": "target must be a real calendar date"}
        ),
    ]


def validate_pairs(path: str | Path, rules: PairRules) -> tuple[ValidationReport, pd.DataFrame]:
    """Read and validate a pairs file; returns the report and the normalized pairs (``line, human, machine``).
    Raises DataValidationError naming the missing columns or the failing lines."""
    import great_expectations as gx

    raw = read_pairs(path)
    columns = run_suite(
        raw,
        [
            gx.expectations.ExpectColumnToExist(
                column=c, meta={"explain": f"required column; the file has {[c for c in raw.columns if c != 'line']}"}
            )
            for c in COLUMNS
        ],
        name="pair-columns",
        id_column="line",
    )
    if not all(o.success for o in columns):
        raise DataValidationError(ValidationReport(str(path), columns, len(raw)))
    table = raw[["line", *COLUMNS]].copy()
    table["human"] = table["human"].map(normalize)
    table["machine"] = table["machine"].str.strip()
    outcomes = run_suite(table, pair_expectations(rules), name="date-pairs", id_column="line")
    by_line = table.set_index("line")
    for o in outcomes:  # "line 7: '31 feb' -> '2001-02-31'" says where and what
        o.failing = [
            f"line {i}: {by_line.at[int(i), 'human']!r} -> {by_line.at[int(i), 'machine']!r}"
            if str(i).isdigit() and int(i) in by_line.index
            else i
            for i in o.failing
        ]
    report = ValidationReport(str(path), columns + outcomes, len(table))
    if not report.success:
        raise DataValidationError(report)
    return report, table
