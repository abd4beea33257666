"""UTF-8 text files read as lines, with errors that name the file and the line: the shared reader of the
line-per-record formats (names, parallel text)."""

from __future__ import annotations

from pathlib import Path

from components.data.formats.images import MissingDataError
from components.errors import DataFormatError


def read_utf8_lines(path: str | Path, missing_hint: str) -> list[str]:
    """Every line of the file without its line ending (a final newline adds no empty line).

    ``missing_hint`` completes the error when the file is absent: how to get the sample or what to put there.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path} does not exist: {missing_hint}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFormatError(
            f"{path}: line {line} is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})"
        ) from None
    if not text:  # an empty file has no lines, not one empty line
        return []
    return [line.rstrip("\r") for line in text.split("\n")][: -1 if text.endswith("\n") else None]
