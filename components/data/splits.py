"""Train/validation/test (and calibration) splits as index arrays, seeded, for every project.

Each function returns ``{name: indices}`` with the named parts in the order asked for, then ``"train"``, which
takes what is left. The parts are disjoint and together hold every index once. One seed gives one split, so
a rerun, a sweep point and the promotion gate all score on the same test rows.

The draws are fixed on purpose: ``random_split`` takes one ``Generator.permutation(count)`` and cuts it in the
order the parts are named; the projects' splits were written that way before this module, and keeping the draw
keeps every registered model's test split (and so the gate's comparison with it) unchanged.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from components.errors import DataFormatError


def part_size(size: float | int, count: int) -> int:
    """An ``int`` is a number of rows; a ``float`` a fraction of ``count``, rounded, and at least one row (a
    validation or test part of nothing would make its metrics NaN, not small)."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return int(size)
    return max(1, round(float(size) * count))


def random_split(
    count: int, sizes: Mapping[str, float | int], seed: int | np.random.Generator, *, sort: bool = True
) -> dict[str, np.ndarray]:
    """Indices ``0..count-1`` shuffled once and cut into the named parts in order (sizes as ``part_size``);
    the rest is ``"train"``. A part asked for after the rows ran out is empty.

    ``seed`` may be a ``Generator`` that draws further splits, e.g. one per folder of recordings. ``sort=False``
    keeps each part in the shuffled order, for a consumer that uses the order itself (it mixes clips in it,
    or trains on the rows as they come).
    """
    order = np.random.default_rng(seed).permutation(count)
    parts, start = {}, 0
    for name, size in sizes.items():
        n = part_size(size, count)
        parts[name], start = order[start : start + n], start + n
    parts["train"] = order[start:]
    return {name: np.sort(idx) for name, idx in parts.items()} if sort else parts


def stratified_split(labels, fractions: Mapping[str, float], seed: int) -> dict[str, np.ndarray]:
    """Indices per part, each class divided in the same proportions (at least one example per named part while
    the class lasts); the remainder of every class goes to ``"train"``. Sorted.

    Classes are taken in sorted order, each shuffled by the same generator: a part is within one example of
    its fraction of every class.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in [*fractions, "train"]}
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        for name, fraction in fractions.items():
            n = part_size(float(fraction), len(idx))
            parts[name].append(idx[start : start + n])
            start += n
        parts["train"].append(idx[start:])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def grouped_split(groups, fractions: Mapping[str, float], seed: int) -> dict[str, np.ndarray]:
    """Indices per part with every group (e.g. a subject) in exactly one part; the remainder goes to ``"train"``.

    Groups are shuffled, then each named part takes whole groups until it holds its fraction of the rows
    (at least one group each), so the fractions are met as closely as whole groups allow. A model that saw a
    person in training would otherwise be scored on the same person's photos.
    """
    groups = np.asarray(groups)
    names = np.unique(groups)
    if len(names) < len(fractions) + 1:
        raise DataFormatError(
            f"a split grouped by subject needs at least {len(fractions) + 1} subjects "
            f"(one per part), found {len(names)}: {', '.join(map(str, names))}"
        )
    order = np.random.default_rng(seed).permutation(names)
    sizes = pd.Series(groups).value_counts()
    assigned: dict[str, list] = {name: [] for name in [*fractions, "train"]}
    position = 0
    for k, (name, fraction) in enumerate(fractions.items()):
        target, taken = fraction * len(groups), 0
        reserve = len(fractions) - k  # one group for each part still to fill, and one for train
        while position < len(order) - reserve:
            size = sizes[order[position]]
            if assigned[name] and abs(taken + size - target) >= abs(taken - target):
                break
            assigned[name].append(order[position])
            taken += size
            position += 1
    assigned["train"] = list(order[position:])
    return {name: np.flatnonzero(np.isin(groups, members)) for name, members in assigned.items()}


def groups_from_names(names, pattern: str) -> np.ndarray:
    """The group of each file name: the first group of ``pattern`` (``re.search``), or its whole match if it has
    none; e.g. ``^face(\\d+)_`` gives face-mask's "face007_1.png" the person "007". A name the pattern does not
    match is refused, naming it: putting it in a group of its own would leak its person across splits."""
    regex = re.compile(pattern)
    groups = []
    for name in names:
        found = regex.search(Path(name).name)
        if found is None:
            raise DataFormatError(f"{name}: the file name does not match data.group_pattern {pattern!r}")
        groups.append(found.group(1) if regex.groups else found.group(0))
    return np.asarray(groups)


def hold_out_calibration(data, fraction: float, seed: int, *, stratify: bool):
    """A copy of a split dataclass with ``fraction`` of its training rows moved to ``X_cal``/``y_cal``: the
    conformal calibration split, never trained on. ``stratify`` keeps every class's share (classifiers);
    regressors' rows are drawn at random. Per-row companions of the training rows (``paths_train``,
    ``ids_train``) move with them to ``paths_cal``/``ids_cal`` where the dataclass has both fields.
    """
    y = np.asarray(data.y_train)
    if stratify:
        part = stratified_split(y, {"calibration": fraction}, seed)
    else:
        part = random_split(len(y), {"calibration": fraction}, seed)
    cal, train = part["calibration"], part["train"]
    changes = {"X_train": data.X_train[train], "y_train": data.y_train[train]}
    changes |= {"X_cal": data.X_train[cal], "y_cal": data.y_train[cal]}
    fields = {f.name for f in dataclasses.fields(data)}
    for name in ("paths", "ids"):
        rows = getattr(data, f"{name}_train", None)
        if rows is not None and f"{name}_cal" in fields:
            as_list = isinstance(rows, list)
            rows = np.asarray(rows)
            changes[f"{name}_train"] = rows[train].tolist() if as_list else rows[train]
            changes[f"{name}_cal"] = rows[cal].tolist() if as_list else rows[cal]
    return dataclasses.replace(data, **changes)
