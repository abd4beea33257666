"""Resumes with entity spans, one JSON object a line (JSONL, UTF-8), in either of the two layouts in use:

- the resume-NER layout of the public DataTurks "Entity Recognition in Resumes" set (``Entity Recognition in
  Resumes.json``): ``{"content": "...", "annotation": [{"label": ["Name"], "points": [{"start": 0, "end": 12,
  "text": "..."}]}]}``. There ``end`` is INCLUSIVE (the span is ``content[start:end + 1]``) and ``label`` is a
  list (of one label; a list of several puts two labels on one span, which is refused as overlapping). A null
  ``annotation`` is a resume without entities.
- a plain layout: ``{"text": "...", "entities": [[start, end, "LABEL"], ...]}`` with ``end`` exclusive, as
  Python slices and spaCy's training JSONL have it.

Both are read into ``Document(text, spans)`` with exclusive ends. Labels go through a map (the DataTurks names
to this project's types, e.g. "Companies worked at" -> COMPANY); spans whose label is not a kept type are
dropped. Surrounding whitespace is trimmed off every span (the DataTurks spans often carry a trailing space or
newline). A bad file is refused naming the file and the line: invalid JSON, neither layout, a span outside its
text (or empty), overlapping spans.

Tokens are words, numbers, e-mail addresses and single punctuation marks, each with its character offsets
(``tokenize``); spans become BIO tags over them (``bio_encode``) and tags become spans again (``bio_decode``), so
a model that tags tokens answers in character spans of the original text.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from components.data.formats.errors import format_error
from components.data.formats.text_lines import read_utf8_lines
from components.projects.settings.ner_resumes import DATATURKS_LABELS  # the default label map

# e-mail addresses first (one token), then words with inner . / ' - joiners ("B.Sc", "A/B", "O'Neil",
# "555-123-4567", "05/2019"), then any other non-space character alone
TOKEN = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\w+(?:[./'\-]\w+)*|[^\w\s]")


@dataclass(frozen=True)
class Span:
    start: int
    end: int  # exclusive
    label: str


@dataclass
class Document:
    text: str
    spans: list[Span] = field(default_factory=list)
    line: int = 0  # in its file, from 1

    def entity_texts(self) -> list[tuple[str, str]]:
        return [(self.text[s.start : s.end], s.label) for s in self.spans]


def tokenize(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of every token of ``text``."""
    return [m.span() for m in TOKEN.finditer(text)]


def bio_encode(tokens: list[tuple[int, int]], spans: list[Span]) -> list[str]:
    """One tag a token: ``B-X`` on the first token a span of label X overlaps, ``I-X`` on the rest, ``O`` else."""
    tags = ["O"] * len(tokens)
    starts = [t[0] for t in tokens]
    for span in spans:
        first = max(0, bisect.bisect_right(starts, span.start) - 1)
        inside = [i for i in range(first, len(tokens)) if tokens[i][0] < span.end and tokens[i][1] > span.start]
        for k, i in enumerate(inside):
            tags[i] = ("B-" if k == 0 else "I-") + span.label
    return tags


def bio_decode(tokens: list[tuple[int, int]], tags: list[str]) -> list[Span]:
    """Spans from the first token's start to the last token's end of every ``B-X I-X ...`` run; an ``I-X`` that
    follows neither ``B-X`` nor ``I-X`` starts a span too (as conlleval reads it)."""
    spans, start, end, label = [], None, None, None
    for (t_start, t_end), tag in zip(tokens, tags):
        kind, _, name = tag.partition("-")
        if kind == "I" and label == name:
            end = t_end
            continue
        if label is not None:
            spans.append(Span(start, end, label))
            label = None
        if kind in ("B", "I") and name:
            start, end, label = t_start, t_end, name
    if label is not None:
        spans.append(Span(start, end, label))
    return spans


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _raw_spans(record: dict, path: Path, line: int) -> tuple[str, list[tuple[int, int, str]]]:
    """The text and its (start, exclusive end, label) spans, as the record's layout writes them."""
    if "content" in record:
        text, spans = record["content"], []
        for a in record.get("annotation") or []:
            labels = a.get("label") if isinstance(a, dict) else None
            labels = [labels] if isinstance(labels, str) else labels
            if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                raise format_error(
                    str(path),
                    "expect_resume_layout",
                    f"line {line}: an annotation's label is {labels!r}",
                    [f"line {line}"],
                )
            for p in a.get("points") or []:
                try:
                    start, end = int(p["start"]), int(p["end"]) + 1  # DataTurks: end inclusive
                except (KeyError, TypeError, ValueError):
                    raise format_error(
                        str(path),
                        "expect_resume_layout",
                        f"line {line}: a point without start/end: {p!r}",
                        [f"line {line}"],
                    ) from None
                spans += [(start, end, label) for label in labels]
    elif "text" in record:
        text, spans = record["text"], []
        for e in record.get("entities") or []:
            if not (isinstance(e, (list, tuple)) and len(e) == 3 and isinstance(e[2], str)):
                raise format_error(
                    str(path),
                    "expect_resume_layout",
                    f"line {line}: an entity is not [start, end, label]: {e!r}",
                    [f"line {line}"],
                )
            spans.append((int(e[0]), int(e[1]), e[2]))
    else:
        raise format_error(
            str(path),
            "expect_resume_layout",
            f"line {line}: neither {{'content', 'annotation'}} nor {{'text', 'entities'}} (keys {sorted(record)})",
            [f"line {line}"],
        )
    if not isinstance(text, str):
        raise format_error(
            str(path), "expect_resume_layout", f"line {line}: the text is not a string", [f"line {line}"]
        )
    return text, spans


def parse_line(
    raw: str, path: Path, line: int, labels: dict[str, str] | None = None, types: set[str] | None = None
) -> Document:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise format_error(
            str(path), "expect_json_lines", f"line {line}: not JSON ({exc.msg} at column {exc.colno})", [f"line {line}"]
        ) from None
    if not isinstance(record, dict):
        raise format_error(str(path), "expect_json_lines", f"line {line}: not a JSON object", [f"line {line}"])
    text, raw_spans = _raw_spans(record, path, line)
    labels = labels if labels is not None else DATATURKS_LABELS
    spans = []
    for start, end, label in raw_spans:
        if not 0 <= start < end <= len(text):
            raise format_error(
                str(path),
                "expect_spans_inside_text",
                f"line {line}: span [{start}, {end}) {label!r} lies outside its text of {len(text)} characters "
                "(or is empty)",
                [f"line {line}"],
            )
        label = labels.get(label, label)
        start, end = _trimmed(text, start, end)
        if start < end and (types is None or label in types):
            spans.append(Span(start, end, label))
    spans = sorted(set(spans), key=lambda s: (s.start, s.end, s.label))
    for a, b in zip(spans, spans[1:]):
        if b.start < a.end:
            raise format_error(
                str(path),
                "expect_no_overlapping_spans",
                f"line {line}: spans {text[a.start : a.end]!r} [{a.start}, {a.end}) {a.label} and "
                f"{text[b.start : b.end]!r} [{b.start}, {b.end}) {b.label} overlap",
                [f"line {line}"],
            )
    return Document(text, spans, line)


def read_jsonl(path: str | Path, labels: dict[str, str] | None = None, types: set[str] | None = None) -> list[Document]:
    """Every resume of the file (blank lines skipped); raises DataValidationError naming the file and line."""
    path = Path(path)
    lines = read_utf8_lines(path, "run `dlfolio data ner-resumes` for the offline sample, or put JSONL resumes there")
    return [parse_line(raw, path, i, labels, types) for i, raw in enumerate(lines, 1) if raw.strip()]


def write_jsonl(path: str | Path, documents: list[Document]) -> None:
    """The plain layout, one resume a line, keys in a fixed order: the same bytes for the same documents."""
    rows = (
        json.dumps({"text": d.text, "entities": [[s.start, s.end, s.label] for s in d.spans]}, ensure_ascii=False)
        for d in documents
    )
    Path(path).write_text("".join(r + "\n" for r in rows), encoding="utf-8")
