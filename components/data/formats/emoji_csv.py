"""Sentences labelled with an emoji, in their real format: a CSV with columns ``sentence,label``.

``label`` is the emoji's index, 0-4 in the course (heart, baseball, smile, disappointed, fork_and_knife). The
course's own files (train_emoji.csv, tesss.csv) have no header and sometimes empty trailing columns; both
layouts read the same. Validation describes the file as a table, one row per data line, so an empty sentence
or an unknown label is reported by its line number.

The offline sample is generated: no emoji dataset installs offline. Sentences are drawn from templates for the
five classes, like the course's data ("i love you", "lets play baseball", "i am so happy", "this is bad news",
"i want pizza for dinner"), including negations ("i am not happy") whose words alone point the wrong way.
A fixed generator seed makes the same bytes every run.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.errors import format_error
from components.data.formats.images import MissingDataError
from components.validation.expectations import DataValidationError, ValidationReport, class_table, run_suite

HEADER = ("sentence", "label")
_TOKEN = re.compile(r"n't|'\w+|\w+")


def tokenize(sentence: str) -> list[str]:
    """Lowercase words split the way GloVe 6B's corpus was: "didn't" -> "did", "n't"; punctuation dropped."""
    return _TOKEN.findall(str(sentence).lower().replace("n't", " n't"))


# --- reading ---------------------------------------------------------------------------------------------------


def read_emoji_csv(path: str | Path) -> pd.DataFrame:
    """A table with ``line`` (the line number in the file), ``sentence`` and ``label`` (as text, validated later)."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(
            f"sentences file {path} does not exist: run `dlfolio data emojify` for the offline "
            "sample, or put a CSV with columns sentence,label there"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as exc:
        raise format_error(str(path), "expect_utf8", f"not UTF-8 text (byte {exc.start})") from None
    rows = list(csv.reader(io.StringIO(text)))
    has_header = bool(rows) and tuple(c.strip().lower() for c in rows[0][:2]) == HEADER
    first_line = 2 if has_header else 1
    records, bad = [], []
    for number, row in enumerate(rows[1:] if has_header else rows, start=first_line):
        extra = [c for c in row[2:] if c.strip()]
        if len(row) < 2 or extra:  # the course's files pad some rows with empty columns: those are fine
            bad.append(f"line {number}: {','.join(row)!r}")
            continue
        records.append((number, row[0], row[1].strip()))
    if bad:
        raise format_error(str(path), "expect_columns", "every row is sentence,label (two columns)", bad)
    return pd.DataFrame(records, columns=["line", "sentence", "label"])


# --- validation ------------------------------------------------------------------------------------------------


def emoji_expectations(n_classes: int, min_rows: int) -> list:
    import great_expectations as gx

    E = gx.expectations
    labels = [str(i) for i in range(n_classes)]
    return [
        E.ExpectTableRowCountToBeBetween(min_value=min_rows, meta={"explain": f"at least {min_rows} sentences"}),
        E.ExpectColumnValuesToBeInSet(
            column="label", value_set=labels, meta={"explain": f"label is an emoji index {labels[0]}-{labels[-1]}"}
        ),
        E.ExpectColumnValueLengthsToBeBetween(column="text", min_value=1, meta={"explain": "a sentence is not empty"}),
        E.ExpectColumnValuesToBeBetween(
            column="known_words", min_value=1, meta={"explain": "at least one word has a word vector"}
        ),
    ]


def class_expectations(min_per_class: int) -> list:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="count",
            min_value=min_per_class,
            meta={"explain": f"each emoji has at least {min_per_class} sentences"},
        )
    ]


def validate_emoji_csv(
    path: str | Path, classes: tuple[str, ...], vocabulary, min_rows: int = 1, min_per_class: int = 1
) -> tuple[ValidationReport, pd.DataFrame]:
    """Read and validate a sentence,label CSV against the emoji names ``classes`` (label i is classes[i]) and a
    word-vector ``vocabulary``; raises DataValidationError naming the failing lines."""
    table = read_emoji_csv(path)
    table["text"] = table["sentence"].str.strip()
    table["known_words"] = [sum(w in vocabulary for w in tokenize(s)) for s in table["sentence"]]
    outcomes = run_suite(table, emoji_expectations(len(classes), min_rows), name="emoji-sentences", id_column="line")
    by_line = table.set_index("line")
    for o in outcomes:  # "line 7: 'qwzx' (label 9)" says where and what
        o.failing = [
            f"line {i}: {by_line.loc[int(i), 'sentence']!r} (label {by_line.loc[int(i), 'label']!r})"
            if str(i).isdigit()
            else i
            for i in o.failing
        ]
    names = table["label"].map({str(i): c for i, c in enumerate(classes)})
    outcomes += run_suite(
        class_table(names, classes), class_expectations(min_per_class), name="emoji-classes", id_column="label"
    )
    report = ValidationReport(str(path), outcomes, len(table))
    if not report.success:
        raise DataValidationError(report)
    return report, table


# --- the offline sample ----------------------------------------------------------------------------------------

_PEOPLE = [
    "you",
    "my mom",
    "my dad",
    "my family",
    "my wife",
    "my husband",
    "my girlfriend",
    "my boyfriend",
    "her",
    "him",
    "my grandmother",
    "my sister",
    "my brother",
    "my kids",
    "my best friend",
]
_WE = ["i", "we", "they", "he", "she", "my brother", "the kids", "my friends", "our team"]
_WHEN = ["today", "tonight", "on sunday", "every weekend", "after school", "yesterday", "this morning", "tomorrow"]
_SPORTS = ["baseball", "football", "soccer", "tennis", "basketball", "golf", "hockey", "volleyball", "cricket"]
_GAMES = ["game", "match", "championship", "tournament", "series", "final"]
_HAPPY = ["happy", "glad", "excited", "thrilled", "delighted", "proud", "cheerful", "joyful", "pleased"]
_GREAT = ["great", "wonderful", "awesome", "fantastic", "amazing", "excellent", "good"]
_SAD = ["sad", "upset", "depressed", "disappointed", "unhappy", "miserable", "lonely", "heartbroken", "gloomy"]
_BAD = ["terrible", "awful", "horrible", "bad", "sad", "depressing"]
_FOODS = [
    "pizza",
    "pasta",
    "sushi",
    "burgers",
    "salad",
    "soup",
    "steak",
    "chicken",
    "rice",
    "noodles",
    "tacos",
    "sandwiches",
    "pancakes",
    "eggs",
    "fish",
    "cake",
]
_MEALS = ["lunch", "dinner", "breakfast"]

TEMPLATES: dict[int, list[str]] = {
    0: [
        "i {love} {person}",
        "i {love} {person} {somuch}",
        "{person} {means} the world to me",
        "i will always {love} {person}",
        "{person} is the love of my life",
        "i {love} {person} and i always will",
        "you are my {dear}",
        "i miss {person} {somuch}",
    ],
    1: [
        "{we} {play} {sport} {when}",
        "the {team} won the {game}",
        "{we} watched the {sport} {game} {when}",
        "lets play {sport} {when}",
        "{we} went to the {sport} {game}",
        "{we} scored in the {game}",
        "he hit a home run in the {game}",
        "{we} practice {sport} {when}",
    ],
    2: [
        "i am so {happy}",
        "{this} is {great} news",
        "{we} feel {happy} {when}",
        "what a {great} day",
        "{we} got the job",
        "i am {happy} for {person}",
        "i am not {sad} anymore",
        "{this} made me {happy}",
        "{we} passed the exam {when}",
        "i feel {great}",
    ],
    3: [
        "i am so {sad}",
        "{this} is {bad} news",
        "{we} feel {sad} {when}",
        "i am not {happy} {when}",
        "{we} did not enjoy the {game}",
        "{we} failed the exam",
        "{this} is not {great}",
        "i lost my job {when}",
        "{this} made me {sad}",
        "i do not feel {great}",
    ],
    4: [
        "let us eat {food}",
        "i want {food} for {meal}",
        "{we} cooked {food} for {meal}",
        "i am hungry for {food}",
        "{we} had {food} for {meal} {when}",
        "when is {meal}",
        "the {food} was delicious",
        "lets get {food} {when}",
        "i could eat {food} every day",
    ],
}
_FILLERS = {
    "love": ["love", "adore", "cherish"],
    "person": _PEOPLE,
    "somuch": ["so much", "more than anything", "forever", "with all my heart"],
    "means": ["means", "meant"],
    "dear": ["sweetheart", "darling", "soulmate", "everything", "true love"],
    "we": _WE,
    "play": ["play", "played", "love playing", "will play"],
    "sport": _SPORTS,
    "when": _WHEN,
    "team": ["team", "yankees", "giants", "home team", "visitors"],
    "game": _GAMES,
    "happy": _HAPPY,
    "great": _GREAT,
    "this": ["this", "that", "it"],
    "sad": _SAD,
    "bad": _BAD,
    "food": _FOODS,
    "meal": _MEALS,
}
_SLOT = re.compile(r"{(\w+)}")


def sample_words() -> list[str]:
    """Every word the templates can produce (the sample's GloVe file must contain them)."""
    words = [w for templates in TEMPLATES.values() for t in templates for w in tokenize(_SLOT.sub(" ", t))]
    words += [w for values in _FILLERS.values() for v in values for w in tokenize(v)]
    return list(dict.fromkeys(words))


def generate_sentences(per_class: int = 240, seed: int = 3) -> pd.DataFrame:
    """``per_class`` distinct template sentences per emoji (fewer if a class has fewer), in a shuffled order."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, templates in TEMPLATES.items():
        seen: dict[str, None] = {}
        for _ in range(per_class * 30):
            if len(seen) == per_class:
                break
            template = templates[rng.integers(len(templates))]
            sentence = _SLOT.sub(lambda m: _FILLERS[m.group(1)][rng.integers(len(_FILLERS[m.group(1)]))], template)
            seen.setdefault(sentence)
        rows += [(s, label) for s in seen]
    table = pd.DataFrame(rows, columns=list(HEADER))
    return table.iloc[rng.permutation(len(table))].reset_index(drop=True)


def write_emoji_csv(path: str | Path, table: pd.DataFrame) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(table[list(HEADER)].itertuples(index=False))
