"""numpy-cnn: a convolutional network written in NumPy (forward and backward by hand) on handwritten digits
[seeds 001, 003].

Real format: an image folder ``<data_dir>/<class>/<image>`` (any size; resized to ``data.image_size`` and
averaged to grayscale). Offline sample: scikit-learn's 1797 real 8x8 digits written as PNGs. Besides the
configured network, the same network with only max pooling and with only average pooling are trained as
comparison child runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.images import load_images, scan_image_folder
from components.data.samples import digit_images
from components.data.splits import stratified_split
from components.evaluation.report import ChildRun, Report
from components.projects.base import Trained
from components.projects.image_classification import ImageClassificationProject, ImageSplits
from components.projects.settings.numpy_cnn import CAPABILITIES, NumpyCNNSettings
from components.scratch.cnn import ConvClassifier


@dataclass
class CNNTrained(Trained):
    arms: dict[str, ConvClassifier] = field(default_factory=dict)  # comparison variants by name


def classifier(settings: NumpyCNNSettings, pool: str | None = None) -> ConvClassifier:
    """The configured network; ``pool`` replaces the pooling of every block that pools (for the comparison)."""
    blocks = [b.model_dump() | ({"pool": pool} if pool and b.pool != "none" else {}) for b in settings.model.blocks]
    t = settings.train
    return ConvClassifier(
        blocks=blocks,
        hidden=settings.model.hidden,
        optimizer=t.optimizer,
        lr=t.lr,
        epochs=t.epochs,
        batch_size=t.batch_size,
        l2=t.l2,
        decay=t.decay,
        decay_rate=t.decay_rate,
        seed=settings.seed,
    )


class NumpyCNN(ImageClassificationProject):
    name = "numpy-cnn"
    capabilities = CAPABILITIES
    summary = "CNN from scratch in NumPy (im2col conv, max/avg pooling, backprop by hand) on 8x8 digits (image folder)"
    primary_metric = "accuracy"
    Settings = NumpyCNNSettings

    def make_sample(self, out_dir: Path) -> dict:
        return digit_images.generate(out_dir)

    def prepare(self, settings: NumpyCNNSettings) -> ImageSplits:
        manifest = scan_image_folder(settings.data_dir)
        images = load_images(settings.data_dir, manifest, settings.data.image_size)
        labels = manifest["label"].to_numpy()
        split = stratified_split(labels, {"test": settings.split.test, "val": settings.split.val}, settings.seed)
        paths = manifest["path"].to_numpy()
        splits = ImageSplits(
            np.array(sorted(settings.data.classes)),
            images[split["train"]],
            labels[split["train"]],
            images[split["val"]],
            labels[split["val"]],
            images[split["test"]],
            labels[split["test"]],
            paths[split["test"]].tolist(),
        )
        # ConvClassifier keeps its best-validation-loss epoch, so calibration takes a share of the training rows.
        return self.with_calibration(splits, settings)

    def estimator(self, settings: NumpyCNNSettings, checkpoint_dir: Path | None = None) -> ConvClassifier:
        """The NumPy network (not the torch one of ImageClassificationProject): what train fits and active
        learning's rounds clone."""
        return classifier(settings)

    def train(self, data: ImageSplits, settings: NumpyCNNSettings, *, on_epoch, checkpoint_dir: Path) -> CNNTrained:
        model = self.estimator(settings).fit(data.X_train, data.y_train, data.X_val, data.y_val, on_epoch=on_epoch)
        arms = {}
        if settings.compare_pooling:
            for pool in ("max", "avg"):
                arms[f"pool={pool}"] = classifier(settings, pool).fit(
                    data.X_train, data.y_train, data.X_val, data.y_val
                )
        info = {"best_epoch": model.best_epoch_, "parameters": model.net_.parameter_count(), **data.sizes()}
        return CNNTrained(model, pd.DataFrame(model.history_), info, arms)

    def evaluate(self, trained: CNNTrained, data: ImageSplits, settings: NumpyCNNSettings) -> Report:
        evaluation = super().evaluate(trained, data, settings)
        for name, arm in trained.arms.items():
            pool = name.split("=", 1)[1]
            accuracy = float(np.mean(arm.predict(data.X_test) == data.y_test))
            evaluation.metrics[f"accuracy_{name.replace('=', '_')}"] = accuracy
            evaluation.children.append(
                ChildRun(
                    name,
                    {"pool": pool, "blocks": len(settings.model.blocks)},
                    {"test_accuracy": accuracy, "best_epoch": arm.best_epoch_},
                    pd.DataFrame(arm.history_).rename(columns={"epoch": "step"}),
                )
            )
        return evaluation
