"""MNIST-layout projects: four IDX files; the offline sample is Fashion-MNIST (same format and size)."""

from __future__ import annotations

from pathlib import Path

from components.data.formats.arrays import ArrayPart
from components.data.formats.idx import copy_fashion_mnist
from components.data.formats.mnist_arrays import load_mnist_parts
from components.projects.array_classification import ArrayClassificationProject
from components.projects.settings.array_classification import ArrayClassificationSettings


class MnistProject(ArrayClassificationProject):
    dataset_format = "MNIST IDX"

    def make_sample(self, out_dir: Path) -> dict:
        return copy_fashion_mnist(out_dir)

    def load_parts(self, settings: ArrayClassificationSettings) -> dict[str, ArrayPart]:
        return load_mnist_parts(settings.data_dir)
