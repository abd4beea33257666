"""A file that exists but is not in the expected format fails like any other validation: with a report."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pandas as pd

from components.validation.expectations import DataValidationError, ExpectationOutcome, ValidationReport


def format_error(dataset: str, expectation: str, detail: str, failing: list[str] | None = None) -> DataValidationError:
    """A one-expectation report, e.g. ``format_error(path, "expect_columns", "missing 'celsius'")``."""
    outcome = ExpectationOutcome(expectation, "", False, detail, list(failing or []))
    return DataValidationError(ValidationReport(dataset, [outcome], 0))


def read_csv_table(path: str | Path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv(path, **kwargs)`` whose every way of failing on a bad file is a one-expectation report
    naming the file and, where known, the line: not UTF-8, a row with too many fields, an empty file, a zip
    that is not one. A UTF-8 byte-order mark (Excel's "CSV UTF-8") is accepted."""
    path = Path(path)
    kwargs.setdefault("encoding", "utf-8-sig")
    try:
        table = pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    except pd.errors.EmptyDataError:
        raise format_error(str(path), "expect_header", "the file is empty: it needs a header line") from None
    except pd.errors.ParserError as exc:
        # pandas says "Expected 2 fields in line 3, saw 4": keep the line, drop the C tokenizer's wording.
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        detail = (
            f"line {found[2]} has {found[3]} fields; the header has {found[1]}"
            if found
            else f"not a readable CSV ({str(exc).strip().splitlines()[0]})"
        )
        raise format_error(str(path), "expect_columns", detail, [f"line {found[2]}"] if found else []) from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError)):
            raise
        raise format_error(str(path), "expect_readable_file", f"cannot read the file: {exc}") from None
    if "index_col" not in kwargs and not isinstance(table.index, pd.RangeIndex):
        # pandas takes extra leading fields on the first data line for an index and shifts every column: the
        # file then "validates" with its columns mislabelled. Nobody's CSV means that.
        fields = len(table.columns) + table.index.nlevels
        raise format_error(
            str(path), "expect_columns", f"line 2 has {fields} fields; the header has {len(table.columns)}", ["line 2"]
        )
    return table


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> DataValidationError:
    """pandas decodes in chunks, so ``exc.start`` is not a file offset: find the first bad byte ourselves."""
    line = None
    if path.suffix.lower() not in (".zip", ".gz", ".bz2", ".xz", ".zst"):
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as first:
            line = data[: first.start].count(b"\n") + 1
    where = f"line {line}" if line else "somewhere in the file"
    return format_error(
        str(path), "expect_utf8", f"not UTF-8 text ({where}); save it as UTF-8", [f"line {line}"] if line else []
    )
