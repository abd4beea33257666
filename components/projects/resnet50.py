"""resnet50: ResNet-50 from identity and convolutional blocks, on the SIGNS h5 layout [seeds 001, 003]."""

from __future__ import annotations

from pathlib import Path

from components.data.samples import signs as signs_sample
from components.projects.array_classification import H5ImageProject


class ResNet50Signs(H5ImageProject):
    name = "resnet50"
    summary = "ResNet-50 (identity + conv blocks, torchvision's 25.6M parameters) on SIGNS h5 (train_signs.h5 / test_signs.h5)"
    stem = "signs"

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        return signs_sample.generate(out_dir, per_class=30 if tiny else None)
