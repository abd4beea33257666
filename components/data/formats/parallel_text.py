"""Parallel text in its real format: a UTF-8 TSV file, one ``source<TAB>target`` pair per line.

That is the layout of the Tatoeba / ManyThings ``.txt`` files (e.g. ``fra.txt``: English, then French, then
an attribution column, which is read and ignored). The offline sample is generated: whole numbers written in
digits, translated into English words ("347" -> "three hundred forty seven", "12005" -> "twelve thousand
five"). It needs real transduction, not copying: the number of output words depends on the digits, teens and
tens fold two digits into one word, and "thousand" appears only when the number is big enough.

Validation describes the file as a table, one row per line, and runs a GX suite over it, so a bad line is
reported by its line number.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from components.data.formats.text_lines import read_utf8_lines
from components.data.vocab import TokenLevel, tokenize
from components.validation.expectations import DataValidationError, ValidationReport, run_suite

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split()
)
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _below_thousand(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(TENS[n // 10])
        n %= 10
    if n or not words:
        words.append(ONES[n])
    return words


def number_words(n: int) -> str:
    """0 <= n < 1,000,000 in English words, without "and" or hyphens: 700017 -> "seven hundred thousand seventeen"."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"{n} is outside 0..999999")
    thousands, rest = divmod(n, 1000)
    words = (_below_thousand(thousands) + ["thousand"]) if thousands else []
    if rest or not words:
        words += _below_thousand(rest)
    return " ".join(words)


def sample_numbers(count: int, seed: int = 0) -> list[int]:
    """Every number below 1000 (the building blocks), then random distinct larger ones up to 999,999."""
    rng = random.Random(seed)
    large = rng.sample(range(1000, 1_000_000), count - 1000)
    return list(range(1000)) + large


def generate(out_dir: str | Path, file: str = "pairs.tsv", count: int = 5000, seed: int = 0) -> dict[str, int]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers = sample_numbers(count, seed)
    random.Random(seed + 1).shuffle(numbers)  # the file's order carries no information
    (out_dir / file).write_text("".join(f"{n}\t{number_words(n)}\n" for n in numbers), encoding="utf-8")
    return {"pairs": len(numbers)}


def read_lines(path: str | Path) -> list[str]:
    """Every line of the parallel text file without its line ending."""
    return read_utf8_lines(
        path,
        "run `dlfolio data transformer` for the offline sample, or put your pairs there, one `source<TAB>target` per line (UTF-8)",
    )


@dataclass(frozen=True)
class PairRules:
    source_level: TokenLevel = "char"
    target_level: TokenLevel = "word"
    lowercase: bool = True
    max_source_tokens: int = 32
    max_target_tokens: int = 32
    min_pairs: int = 100


def pairs_table(lines: list[str], rules: PairRules) -> pd.DataFrame:
    """One row per line: its number, how many tab-separated columns it has, the pair, and each side's length
    in tokens. Columns after the second (Tatoeba's attribution) are dropped."""
    fields = [line.split("\t") for line in lines]
    source = [f[0] for f in fields]
    target = [f[1] if len(f) > 1 else "" for f in fields]
    return pd.DataFrame(
        {
            "line": range(1, len(lines) + 1),
            "columns": [len(f) for f in fields],
            "source": source,
            "target": target,
            "source_tokens": [len(tokenize(s, rules.source_level, rules.lowercase)) for s in source],
            "target_tokens": [len(tokenize(t, rules.target_level, rules.lowercase)) for t in target],
        }
    )


def pair_expectations(rules: PairRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableRowCountToBeBetween(
            min_value=rules.min_pairs, meta={"explain": f"at least {rules.min_pairs} pairs to learn from"}
        ),
        E.ExpectColumnValuesToBeBetween(
            column="columns",
            min_value=2,
            meta={"explain": "source<TAB>target (a third column, e.g. attribution, is ignored)"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="source_tokens",
            min_value=1,
            max_value=rules.max_source_tokens,
            meta={
                "explain": f"source of 1 to {rules.max_source_tokens} "
                f"{rules.source_level} tokens (an empty source fails here)"
            },
        ),
        E.ExpectColumnValuesToBeBetween(
            column="target_tokens",
            min_value=1,
            max_value=rules.max_target_tokens,
            meta={
                "explain": f"target of 1 to {rules.max_target_tokens} "
                f"{rules.target_level} tokens (an empty target fails here)"
            },
        ),
    ]


def validate_pairs(path: str | Path, rules: PairRules) -> tuple[ValidationReport, pd.DataFrame]:
    """Read and validate a parallel text file; returns the report and the table (line, source, target, ...).
    Raises DataValidationError naming the failing line numbers."""
    table = pairs_table(read_lines(path), rules)
    outcomes = run_suite(table, pair_expectations(rules), name="parallel-text", id_column="line")
    for o in outcomes:  # "line 7: '12\t'" tells where and what
        o.failing = [f"line {i}: {_shown(table, int(i))}" if str(i).isdigit() else i for i in o.failing]
    report = ValidationReport(str(path), outcomes, len(table))
    if not report.success:
        raise DataValidationError(report)
    return report, table


def _shown(table: pd.DataFrame, line: int) -> str:
    row = table.iloc[line - 1]
    text = f"{row['source']}\t{row['target']}" if row["columns"] > 1 else row["source"]
    return repr(text if len(text) <= 60 else text[:57] + "...")


def read_pairs(path: str | Path, rules: PairRules) -> pd.DataFrame:
    """The pairs as a table with columns ``source`` and ``target``. No Great Expectations here: checking the file
    is the validate stage's job (``validate_pairs``), and the GPU image, which trains, lacks GX."""
    return pairs_table(read_lines(path), rules)[["source", "target"]]
