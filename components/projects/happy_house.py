"""happy-house: is the person at the door smiling? A small binary CNN on 64x64x3 images in h5 [seed 003]."""

from __future__ import annotations

from pathlib import Path

from components.data.samples import happy_house as happy_house_sample
from components.projects.array_classification import H5ImageProject


class HappyHouse(H5ImageProject):
    name = "happy-house"
    summary = "Happy house: one-conv binary CNN on 64x64x3 faces, h5 layout (train_happy.h5 / test_happy.h5)"
    stem = "happy"
    primary_metric = "f1"

    def make_sample(self, out_dir: Path) -> dict:
        return happy_house_sample.generate(out_dir)
