"""bAbI question answering tasks in their real format, and a generated sample in the same format.

A task file (e.g. ``qa1_single-supporting-fact_train.txt`` from Facebook Research's tasks_1-20_v1-2, ``en/``)
holds numbered lines. A line without tabs is a statement; a line with tabs is a question
``question<TAB>answer<TAB>supporting fact ids``; the numbering restarting at 1 starts a new story::

    1 Mary moved to the bathroom.
    2 John went to the hallway.
    3 Where is Mary? 	bathroom	1

A question sees every statement of its story before it. Validation describes the file as a table, one row per
question line, so a question with a missing field, a supporting fact pointing forward or an answer that is not
a word of its story (this project answers by pointing at a story word) is reported by file and line.

The offline sample is generated, as bAbI itself is (no bAbI installs offline): task 1 (single supporting fact,
people moving between rooms) and task 2 (two supporting facts: objects picked up and dropped), from a fixed
seed, so every run writes the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.errors import format_error
from components.data.formats.images import MissingDataError
from components.data.vocab import tokenize
from components.projects.settings.qa_babi import TASKS  # data.tasks' choices
from components.validation.expectations import DataValidationError, ValidationReport, run_suite


@dataclass(frozen=True)
class Question:
    task: str
    file: str
    line: int  # line number in the file (1-based), for messages
    story: tuple[str, ...]  # the statements before the question, oldest first
    story_ids: tuple[int, ...]  # their ids as written in the file
    question: str
    answer: str
    supporting: tuple[int, ...]  # story line ids (the numbers written in the file)
    fields: int = 3  # tab-separated fields of the question line
    supports_earlier: bool = True  # every supporting id is an earlier statement of the story

    @property
    def answer_in_story(self) -> bool:
        words = {w for s in self.story for w in tokenize(s, "word")}
        return all(w in words for w in tokenize(self.answer, "word")) and bool(self.answer.strip())


def task_file(data_dir: str | Path, task: str, split: str) -> Path:
    return Path(data_dir) / f"{task}_{split}.txt"


def short_name(task: str) -> str:
    """``qa1_single-supporting-fact`` -> ``qa1`` (metric names)."""
    return task.split("_", 1)[0]


_LINE = re.compile(r"^(\d+) (.*)$")


def read_babi(path: str | Path, task: str | None = None) -> list[Question]:
    """Every question of a task file with its story so far. A line that is not ``<id> <text>`` fails at once."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(
            f"bAbI file {path} does not exist: run `dlfolio data qa-babi` for the offline sample, "
            "or put the en/ files of bAbI tasks_1-20_v1-2 there"
        )
    task = task or path.name.rsplit("_", 1)[0]
    questions: list[Question] = []
    statements: dict[int, str] = {}  # id -> text, of the current story
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if not match:
            raise format_error(
                str(path), "expect_numbered_line", "each line is '<id> <text>'", [f"line {number}: {raw[:60]!r}"]
            )
        ident, text = int(match.group(1)), match.group(2)
        if ident == 1:
            statements = {}
        if "\t" not in text:
            statements[ident] = text.strip()
            continue
        fields = text.split("\t")
        ids = [int(i) for i in re.findall(r"-?\d+", fields[2])] if len(fields) > 2 else []
        questions.append(
            Question(
                task,
                path.name,
                number,
                tuple(statements.values()),
                tuple(statements),
                fields[0].strip(),
                fields[1].strip() if len(fields) > 1 else "",
                tuple(ids),
                len(fields),
                bool(ids) and all(i in statements for i in ids),
            )
        )
    return questions


def read_task(data_dir: str | Path, task: str, split: str) -> list[Question]:
    return read_babi(task_file(data_dir, task, split), task)


# --- validation ------------------------------------------------------------------------------------------------


def question_table(questions: list[Question]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "where": [f"{q.file} line {q.line}" for q in questions],
            "tab_fields": [q.fields for q in questions],
            "supports_earlier": [q.supports_earlier for q in questions],
            "answer_in_story": [q.answer_in_story for q in questions],
        }
    )


def babi_expectations(min_questions: int) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableRowCountToBeBetween(
            min_value=min_questions, meta={"explain": f"at least {min_questions} questions"}
        ),
        E.ExpectColumnValuesToBeInSet(
            column="tab_fields",
            value_set=[3],
            meta={"explain": "a question line is question<TAB>answer<TAB>supporting ids"},
        ),
        E.ExpectColumnValuesToBeInSet(
            column="supports_earlier",
            value_set=[True],
            meta={"explain": "supporting fact ids refer to earlier statements of the story"},
        ),
        E.ExpectColumnValuesToBeInSet(
            column="answer_in_story",
            value_set=[True],
            meta={"explain": "the answer is a word of the story (extractive QA)"},
        ),
    ]


def validate_babi(path: str | Path, min_questions: int = 1) -> tuple[ValidationReport, list[Question]]:
    """Read and validate one task file; raises DataValidationError naming the failing file and lines."""
    questions = read_babi(path)
    outcomes = run_suite(
        question_table(questions), babi_expectations(min_questions), name="babi-questions", id_column="where"
    )
    report = ValidationReport(str(path), outcomes, len(questions))
    if not report.success:
        raise DataValidationError(report)
    return report, questions


# --- the offline sample ----------------------------------------------------------------------------------------

PEOPLE = ("Mary", "John", "Sandra", "Daniel")
PLACES = ("bathroom", "hallway", "garden", "office", "kitchen", "bedroom")
OBJECTS = ("football", "apple", "milk")
MOVES = ("moved to", "went to", "journeyed to", "travelled to", "went back to")
TAKES = ("picked up", "got", "grabbed", "took")
DROPS = ("dropped", "discarded", "put down", "left")


def _task1_story(rng: np.random.Generator, questions: int) -> list[str]:
    """Two moves, then 'Where is X?' about someone whose place is known, ``questions`` times."""
    lines, where = [], {}  # where: person -> (place, line id)
    for _ in range(questions):
        for _ in range(2):
            person, place = PEOPLE[rng.integers(len(PEOPLE))], PLACES[rng.integers(len(PLACES))]
            lines.append(f"{person} {MOVES[rng.integers(len(MOVES))]} the {place}.")
            where[person] = (place, len(lines))
        person = list(where)[rng.integers(len(where))]
        place, support = where[person]
        lines.append(f"Where is {person}? \t{place}\t{support}")
    return lines


def _task2_story(rng: np.random.Generator, questions: int) -> list[str]:
    """People move, pick up and drop objects; 'Where is the X?' needs the holder's pick-up and latest move."""
    lines: list[str] = []
    at: dict[str, tuple[str, int]] = {}  # person -> (place, line of the move)
    holder: dict[str, tuple[str, int]] = {}  # object -> (person, line of the pick-up)
    dropped: dict[str, tuple[str, tuple[int, int]]] = {}  # object -> (place, (move line, drop line))
    asked = 0
    while asked < questions:
        person = PEOPLE[rng.integers(len(PEOPLE))]
        action = rng.random()
        held = [o for o, (p, _) in holder.items() if p == person]
        free = [o for o in OBJECTS if o not in holder]
        if person in at and held and action < 0.2:
            obj = held[rng.integers(len(held))]
            lines.append(f"{person} {DROPS[rng.integers(len(DROPS))]} the {obj}.")
            dropped[obj] = (at[person][0], (at[person][1], len(lines)))
            del holder[obj]
        elif person in at and free and action < 0.5:
            obj = free[rng.integers(len(free))]
            lines.append(f"{person} {TAKES[rng.integers(len(TAKES))]} the {obj}.")
            holder[obj] = (person, len(lines))
            dropped.pop(obj, None)
        else:
            place = PLACES[rng.integers(len(PLACES))]
            lines.append(f"{person} {MOVES[rng.integers(len(MOVES))]} the {place}.")
            at[person] = (place, len(lines))
        # Ask about an object carried by someone who moved since picking it up, or dropped somewhere.
        known = {o: (at[p][0], (pick, at[p][1])) for o, (p, pick) in holder.items() if at[p][1] > pick}
        known |= dropped
        if known and rng.random() < 0.6:
            obj = sorted(known)[rng.integers(len(known))]
            place, support = known[obj]
            lines.append(f"Where is the {obj}? \t{place}\t{' '.join(map(str, sorted(support)))}")
            asked += 1
    return lines


def generate_task(task: str, stories: int, rng: np.random.Generator, questions_per_story: int = 5) -> str:
    story = {TASKS[0]: _task1_story, TASKS[1]: _task2_story}[task]
    out = []
    for _ in range(stories):
        out += [f"{i} {line}" for i, line in enumerate(story(rng, questions_per_story), start=1)]
    return "\n".join(out) + "\n"


def write_sample(out_dir: str | Path, stories: dict[str, int], seed: int = 3) -> dict[str, int]:
    """Train and test files for each generated task; ``stories`` = split -> stories per task (5 questions each)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for t, task in enumerate(TASKS):
        for s, (split, n) in enumerate(stories.items()):
            text = generate_task(task, n, np.random.default_rng([seed, t, s]))
            task_file(out_dir, task, split).write_text(text, encoding="utf-8")
            counts[f"{short_name(task)}_{split}"] = text.count("\t") // 2
    return counts
