"""Human-in-the-loop labelling: the labelled set on disk, the query file a person fills in, and its checks.

Files, under ``<labels_dir>/<project>/`` (``labels/`` by default, see the ``active_learning`` settings):

    state.json    what is labelled so far ({item: label}), the items asked for and not answered yet,
                  and one history row per round (labels used, test accuracy)
    queries.csv   the items asked for: item, current prediction, its probability, and an empty ``label``
                  column for the person to fill in

Items are named by their path relative to the project's data directory (or ``train[i]`` for array datasets).
The first labelled set is stratified and takes its labels from the dataset; every later label comes from a
person through ``queries.csv``.

An export or import holds ``state.json.lock`` (``components.locks``) from reading the state to writing it, so
two imports at once cannot both start from the same state and keep only one batch: the second waits (up to
``LOCK_WAIT`` seconds, saying so) and then reads the state the first one wrote. Items asked for and not yet
answered stay pending across rounds, so two people who each fill in part of one queries.csv can import their
files in either order, one after the other or at once.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from components.errors import DlfolioError
from components.locks import FileLock

LOCK_WAIT = 600.0  # seconds an import or export waits for another one of the same project (a refit takes a while)


class LabelFileError(DlfolioError, ValueError):
    """A label file that cannot be imported; the message names every bad row."""


@dataclass
class LabelState:
    project: str
    strategy: str
    labelled: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> LabelState | None:
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)  # never a half-written state file


def write_queries(path: Path, items: list[str], classes, proba: np.ndarray) -> pd.DataFrame:
    """The CSV a person labels: one row per queried item with the model's current guess."""
    classes = np.asarray(classes)
    table = pd.DataFrame(
        {
            "item": items,
            "predicted": classes[proba.argmax(1)].astype(str),
            "probability": proba.max(1).round(4),
            "label": "",
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table


MAX_LISTED_PROBLEMS = 20


def read_labels(path: Path, known_items: set[str], classes) -> dict[str, str]:
    """``{item: label}`` from a filled-in queries file, or LabelFileError naming each bad row (file line numbers,
    the header being line 1): unknown items, labels outside the classes, missing labels, repeated items."""
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(f"{path}: label file not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise LabelFileError(f"{path}: not a readable CSV file ({exc})") from None
    missing = {"item", "label"} - set(table.columns)
    if missing:
        raise LabelFileError(f"{path}: missing column(s) {sorted(missing)}; expected at least 'item' and 'label'")
    if table.empty:  # a header alone would count as a round that taught the model nothing
        raise LabelFileError(f"{path}: no labelled rows, only the header; fill in the label column, then import")
    allowed = {str(c) for c in classes}
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for i, (item, label) in enumerate(zip(table["item"].str.strip(), table["label"].str.strip())):
        line = i + 2
        if item not in known_items:
            problems.append(f"line {line}: unknown item {item!r} (not among the queried items)")
        if not label:
            problems.append(f"line {line}: item {item!r} has no label")
        elif label not in allowed:
            problems.append(f"line {line}: label {label!r} is not a class (classes: {', '.join(sorted(allowed))})")
        if item in first_line:
            problems.append(f"line {line}: item {item!r} repeats line {first_line[item]}")
        first_line.setdefault(item, line)
    if problems:  # the first rows say what is wrong; two million of them (177 MB) would only bury it
        shown = problems[:MAX_LISTED_PROBLEMS]
        more = len(problems) - len(shown)
        raise LabelFileError(
            f"{path}: {len(problems)} problem(s), nothing imported:\n  "
            + "\n  ".join(shown)
            + (f"\n  ... and {more} more" if more else "")
        )
    return dict(zip(table["item"].str.strip(), table["label"].str.strip()))


@dataclass
class LabelSession:
    """One project's human-in-the-loop loop: its data, its state file, its query file and its label store.

    With ``unlabelled_dir`` set the pool is that folder's images and the whole training split is the labelled
    set; otherwise the training split stands in for the pool (a stratified ``initial_size`` start, the rest
    asked for). Either way an import writes its labels into the dataset through the project's label store
    (``Project.label_store``: files moved into ``<data_dir>/<class>/`` for image folders), so ``dvc add data``
    and ``dvc repro`` train on them; a project without a store (array files, a CSV index) keeps them in
    state.json only, and says so.
    """

    project: object  # a Project with estimator(settings), prepare(settings) and label_store(settings, al)
    settings: object
    root: Path

    def __post_init__(self):
        al = getattr(self.settings, "active_learning", None)
        if al is None:
            raise LabelFileError(f"{self.project.name}: params.yaml has no active_learning section for this project")
        self.al = al
        labels_dir = al.labels_dir if al.labels_dir.is_absolute() else self.root / al.labels_dir
        self.dir = labels_dir / self.project.name
        self.state_path, self.queries_path = self.dir / "state.json", self.dir / "queries.csv"
        unlabelled = al.unlabelled_dir
        if unlabelled is not None and not unlabelled.is_absolute():
            unlabelled = self.root / unlabelled
        store = getattr(self.project, "label_store", None)
        self.store = store(self.settings, unlabelled) if store else None
        if unlabelled is not None and self.store is None:
            raise LabelFileError(
                f"params.yaml: projects.{self.project.name}.active_learning.unlabelled_dir: {self.project.name}'s "
                "dataset format has no folder of unlabelled items to take labels into"
            )
        self.pool_mode = unlabelled is not None
        self.written: list[Path] = []  # the dataset files the last import wrote
        self._load()

    def _load(self) -> None:
        """Read the dataset (again, after an import changed it): the items, their images, the index."""
        self.data = self.project.prepare(self.settings)
        n = len(self.data.y_train)
        self.items = (
            list(self.data.paths_train)
            if getattr(self.data, "paths_train", None)
            else [f"train[{i}]" for i in range(n)]
        )
        self.X = self.data.X_train
        if self.pool_mode:
            pool = self.store.pool_items()
            if pool:
                self.X = np.concatenate([self.X, self.store.load(pool, self.X.shape[1])])
            self.items += pool
        self.index = {item: i for i, item in enumerate(self.items)}
        self.classes = np.unique(self.data.y_train)

    def lock(self) -> FileLock:
        """The project's label lock: held by one export or import at a time."""

        def waiting(holder: dict) -> None:
            print(
                f"{self.state_path}: another `dlfolio label` (pid {holder['pid']}, since {holder['since']}) is "
                f"updating it; waiting up to {LOCK_WAIT:.0f}s",
                file=sys.stderr,
                flush=True,
            )

        return FileLock(
            self.state_path.with_name("state.json.lock"),
            busy=lambda h: (
                f"{self.state_path}: still locked by another `dlfolio label` (pid {h['pid']}, since "
                f"{h['since']}) after {LOCK_WAIT:.0f}s; try again when it has finished"
            ),
            wait=LOCK_WAIT,
            on_wait=waiting,
        )

    def state(self) -> LabelState:
        from components.active.loop import initial_indices

        state = LabelState.load(self.state_path)
        if state is None:
            start = (
                [] if self.pool_mode else initial_indices(self.data.y_train, self.al.initial_size, self.settings.seed)
            )
            state = LabelState(
                self.project.name, self.al.strategies[0], {self.items[i]: str(self.data.y_train[i]) for i in start}
            )
        # A label written into the dataset may land in validation or test when the split is redrawn: it is the
        # dataset's now. Only an item whose file is gone means the dataset changed under the labels.
        unknown = [
            item
            for item in [*([] if self.pool_mode else state.labelled), *state.pending]
            if item not in self.index and not (self.store is not None and self.store.source(item).is_file())
        ]
        if unknown:
            raise LabelFileError(
                f"{self.state_path}: items no longer in the training data: {unknown[:5]} "
                f"({len(unknown)} in all); the dataset changed under the labels"
            )
        state.pending = [item for item in state.pending if item in self.index]
        return state

    def _class_value(self, label: str):
        return self.classes[[str(c) for c in self.classes].index(label)]

    def _learner(self, state: LabelState):
        from components.active.loop import PoolLearner
        from components.active.stage import round_estimator

        if self.pool_mode:  # the dataset's labelled training split, the unlabelled folder as the pool
            idx, y = np.arange(len(self.data.y_train)), self.data.y_train
        else:
            known = [item for item in state.labelled if item in self.index]
            idx = np.array([self.index[item] for item in known], dtype=int)
            y = np.array([self._class_value(state.labelled[item]) for item in known])
        return PoolLearner(
            round_estimator(self.project, self.settings, self.al),
            state.strategy,
            self.X,
            idx,
            y,
            n_samples=self.al.mc_samples,
            seed=self.settings.seed,
            candidates=self.al.candidates,
        )

    def export(self) -> tuple[pd.DataFrame, LabelState]:
        """Fit on the labels so far, ask the strategy for the next ``query_size`` items, write queries.csv."""
        with self.lock():
            state = self.state()
            return self._export(state, self._learner(state))

    def _export(self, state: LabelState, learner, keep: list[str] = ()) -> tuple[pd.DataFrame, LabelState]:
        """The next batch: the still unanswered items of ``keep``, then the strategy's picks up to ``query_size``."""
        kept = [self.index[item] for item in keep if item in self.index]
        need = min(max(0, self.al.query_size - len(kept)), len(learner.pool) - len(kept))
        picked = learner.query(min(need + len(kept), len(learner.pool))) if need > 0 else []
        chosen = np.array([*kept, *[i for i in picked if i not in set(kept)][:need]], dtype=int)
        state.pending = [self.items[i] for i in chosen]
        table = write_queries(
            self.queries_path,
            state.pending,
            learner.estimator.classes_,
            learner.estimator.predict_proba(self.X[chosen]) if len(chosen) else np.zeros((0, len(self.classes))),
        )
        if not state.history:
            state.history.append(self._score(learner, state))
        state.save(self.state_path)
        return table, state

    def import_labels(self, file: Path) -> tuple[dict, pd.DataFrame, LabelState]:
        """Check a filled-in file against the pending items, write its labels into the dataset, add them, refit,
        score, query the next batch (the pending items it did not answer first). A bad row anywhere refuses the
        whole file, naming its line: nothing is written."""
        with self.lock():  # from reading the state to writing it: a concurrent import waits, then sees ours
            state = self.state()
            if not state.pending:
                raise LabelFileError(
                    f"{self.project.name}: no items are waiting for labels; run `dlfolio label export "
                    f"{self.project.name}` first"
                )
            answers = read_labels(file, set(state.pending), self.classes)
            lines = {item: line for line, item in enumerate(answers, start=2)}  # read_labels keeps the file's order
            moves = self.store.plan(answers, lines) if self.store is not None else []
            written = self.store.write(moves) if moves else []
            renamed = {str(src): self.store.item_of(dst) for src, dst in zip([m[0] for m in moves], written)}
            for item, label in answers.items():
                new = renamed.get(str(self.store.source(item)), item) if self.store is not None else item
                state.labelled.pop(item, None)
                state.labelled[new] = label
            unanswered = [item for item in state.pending if item not in answers]
            self.written = written
            if written:
                self._load()  # the dataset changed: its split, the pool
            learner = self._learner(state)
            state.history.append(self._score(learner, state))
            table, state = self._export(state, learner, keep=unanswered)  # continue the loop: the next batch
            return state.history[-1], table, state

    def _score(self, learner, state: LabelState) -> dict:
        return {
            "round": len(state.history),
            "labels": len(state.labelled) if not self.pool_mode else int(len(self.data.y_train)),
            "test_accuracy": float(learner.learner.score(self.data.X_test, self.data.y_test)),
        }
