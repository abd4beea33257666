"""Image classification from array files (MNIST IDX, h5) that come with their own train/test split.

Only loading differs from the image-folder projects: ``load_parts`` reads the files, ``validate`` runs the
array suites (components/data/formats/arrays.py), ``prepare`` takes a stratified validation slice from the training
part. Training, evaluation and serving are ImageClassificationProject's.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import numpy as np

from components.data.formats.arrays import ArrayPart, ArrayRules, validate_arrays
from components.data.formats.h5_images import load_h5_parts
from components.data.splits import stratified_split
from components.projects.image_classification import (
    ImageClassificationProject,
    ImageSplits,
)
from components.projects.settings.array_classification import CAPABILITIES, ArrayClassificationSettings
from components.training.estimators import TorchImageClassifier
from components.validation.expectations import ValidationReport


def subset(part: ArrayPart, limit: int | None, seed: int) -> ArrayPart:
    """A stratified subset of ``limit`` images (all of them when limit is None or larger)."""
    if limit is None or limit >= len(part.labels):
        return part
    idx = stratified_split(part.labels, {"keep": limit / len(part.labels)}, seed)["keep"]
    return ArrayPart(part.images[idx], part.labels[idx], part.source, part.declared_labels)


def resize(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1:3] == (size, size):
        return images
    import torch
    from torchvision.transforms.v2 import functional as F

    t = torch.as_tensor(images).permute(0, 3, 1, 2)
    return F.resize(t, [size, size], antialias=True).permute(0, 2, 3, 1).contiguous().numpy()


class ArrayClassificationProject(ImageClassificationProject):
    Settings = ArrayClassificationSettings
    capabilities = CAPABILITIES
    dataset_format: str = "arrays"

    @abstractmethod
    def load_parts(self, settings: ArrayClassificationSettings) -> dict[str, ArrayPart]:
        """The dataset's parts, ``{"train": ArrayPart, "test": ArrayPart}``, as the files hold them."""

    def label_store(self, settings, unlabelled_dir=None):
        """None: array files (IDX, h5) hold their labels in the file; `dlfolio label` keeps them in state.json."""
        return None

    def rules(self, settings: ArrayClassificationSettings) -> ArrayRules:
        d = settings.data
        return ArrayRules(
            labels=d.labels,
            height=d.height,
            width=d.width,
            channels=d.channels,
            min_per_class=d.min_per_class,
            min_class_share=d.min_class_share,
        )

    def validate(self, settings: ArrayClassificationSettings) -> ValidationReport:
        return validate_arrays(
            f"{settings.data_dir} ({self.dataset_format})", self.load_parts(settings), self.rules(settings)
        )

    def prepare(self, settings: ArrayClassificationSettings) -> ImageSplits:
        parts = self.load_parts(settings)
        train = subset(parts["train"], settings.data.train_limit, settings.seed)
        test = subset(parts["test"], settings.data.test_limit, settings.seed)
        split = stratified_split(train.labels, {"val": settings.val}, settings.seed)
        size = settings.data.image_size
        X, X_test = resize(train.images, size), resize(test.images, size)
        test_ids = [f"{test.source}[{i}]" for i in range(len(test.labels))]
        splits = ImageSplits(
            np.array(sorted(settings.data.labels)),
            X[split["train"]],
            train.labels[split["train"]],
            X[split["val"]],
            train.labels[split["val"]],
            X_test,
            test.labels,
            test_ids,
        )
        # The trainer early-stops on the validation slice, so calibration takes its own share of the training part.
        return self.with_calibration(splits, settings)

    def estimator(
        self, settings: ArrayClassificationSettings, checkpoint_dir: Path | None = None
    ) -> TorchImageClassifier:
        est = super().estimator(settings, checkpoint_dir)
        return est.set_params(mean=settings.normalize.mean, std=settings.normalize.std)


class H5ImageProject(ArrayClassificationProject):
    """Datasets in the course h5 layout: ``<data_dir>/train_<stem>.h5`` and ``test_<stem>.h5``."""

    stem: str
    dataset_format = "h5"

    def load_parts(self, settings: ArrayClassificationSettings) -> dict[str, ArrayPart]:
        return load_h5_parts(settings.data_dir, self.stem)
