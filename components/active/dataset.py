"""Where a person's labels go: into the project's dataset, in its own format, so DVC versions them.

An image-folder dataset (``<data_dir>/<class>/<image>``) holds a label as the folder its file is in, so a label
is written by moving the file there:

    <unlabelled_dir>/a.png  labelled without_mask  ->  <data_dir>/without_mask/a.png   (a new training item)
    with_mask/b.png         labelled without_mask  ->  <data_dir>/without_mask/b.png   (a correction)
    with_mask/c.png         labelled with_mask     ->  unchanged                        (already so)

Then ``dvc add data`` records the new data and the next ``dvc repro`` trains on it. Every move is planned and
checked before the first one is made (a file already at the destination refuses the whole import, naming the
line), and a move that fails midway puts the files already moved back: an import writes all of it or nothing.
Needs the standard library, numpy and pandas.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.errors import DlfolioError

UNLABELLED = "unlabelled"  # item names of the unlabelled pool start with this folder: unlabelled/<file>


class LabelWriteError(DlfolioError, ValueError):
    """Labels that cannot be written into the dataset; the message names every bad row, nothing was written."""


@dataclass
class ImageFolderLabels:
    """The label store of an image-folder dataset, with an optional folder of images nobody has labelled."""

    data_dir: Path
    classes: tuple[str, ...]
    unlabelled_dir: Path | None = None

    def pool_items(self) -> list[str]:
        """``unlabelled/<path>`` of every image in the unlabelled folder (none when there is no such folder)."""
        from components.data.formats.images import IMAGE_SUFFIXES

        if self.unlabelled_dir is None or not self.unlabelled_dir.is_dir():
            return []
        files = sorted(
            p
            for p in self.unlabelled_dir.rglob("*")
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        return [f"{UNLABELLED}/{p.relative_to(self.unlabelled_dir).as_posix()}" for p in files]

    def source(self, item: str) -> Path:
        if item.startswith(f"{UNLABELLED}/") and self.unlabelled_dir is not None:
            return self.unlabelled_dir / item.removeprefix(f"{UNLABELLED}/")
        return self.data_dir / item

    def load(self, items: list[str], image_size: int) -> np.ndarray:
        from components.data.formats.images import load_images

        return load_images("/", pd.DataFrame({"path": [str(self.source(i).resolve()) for i in items]}), image_size)

    def destination(self, item: str, label: str) -> Path:
        return self.data_dir / label / Path(item).name

    def plan(self, answers: dict[str, str], lines: dict[str, int]) -> list[tuple[Path, Path]]:
        """The moves that write ``answers`` ({item: label}), or LabelWriteError naming each row that cannot be
        written (its line in the label file): a file already at the destination, a source that is gone."""
        moves, problems, taken = [], [], {}
        for item, label in answers.items():
            src, dst = self.source(item), self.destination(item, label)
            if src.resolve() == dst.resolve():
                continue  # the dataset holds that label already
            if not src.is_file():
                problems.append(f"line {lines[item]}: {item!r}: its file {src} is gone")
            elif dst.exists() or dst in taken:
                problems.append(
                    f"line {lines[item]}: {item!r} -> {dst.relative_to(self.data_dir)}: a file of that name is "
                    + (f"labelled on line {taken[dst]}" if dst in taken else "in the dataset already")
                    + "; rename one of them"
                )
            else:
                taken[dst] = lines[item]
                moves.append((src, dst))
        if problems:
            raise LabelWriteError(
                f"{self.data_dir}: {len(problems)} label(s) cannot be written, nothing imported:\n  "
                + "\n  ".join(problems[:20])
            )
        return moves

    def write(self, moves: list[tuple[Path, Path]]) -> list[Path]:
        """Make the planned moves; on any failure the ones made are undone and the error re-raised."""
        done: list[tuple[Path, Path]] = []
        try:
            for src, dst in moves:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(src, dst)
                done.append((src, dst))
        except BaseException:
            for src, dst in reversed(done):
                shutil.move(dst, src)
            raise
        return [dst for _, dst in done]

    def item_of(self, path: Path) -> str:
        """The item name a written file has in the dataset (its path under data_dir)."""
        return path.relative_to(self.data_dir).as_posix()
