"""autodiff-mlp: a reverse-mode autodiff engine and a feedforward net trained with it [seed 000].

Real format: an image folder, ``root/<class>/<image>`` (any size; converted to grayscale and resized to
``image_size``). Offline sample: scikit-learn's 8 x 8 handwritten digits written as PNG files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.images import scan_image_folder
from components.data.samples import digit_images
from components.data.splits import stratified_split
from components.evaluation.report import Report, classifier_evaluation, served_classifier_metrics
from components.projects.base import Project, Trained
from components.projects.settings.autodiff_mlp import CAPABILITIES, AutodiffMLPSettings
from components.scratch.autodiff_nn import AutodiffMLPClassifier
from components.scratch.predictors import ImagePredictor
from components.validation.expectations import ImageRules, ValidationReport, validate_image_folder


@dataclass
class GrayImageSplits:
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    paths_test: list[str]
    X_cal: np.ndarray | None = None  # conformal calibration (Project.with_calibration)
    y_cal: np.ndarray | None = None


class AutodiffMLP(Project):
    name = "autodiff-mlp"
    capabilities = CAPABILITIES
    summary = "Reverse-mode autodiff engine (NumPy) + MLP trained with it (image folder; digits sample)"
    Settings = AutodiffMLPSettings

    def make_sample(self, out_dir: Path) -> dict:
        return digit_images.generate(out_dir)

    def validate(self, settings: AutodiffMLPSettings) -> ValidationReport:
        d = settings.data
        rules = ImageRules(
            classes=d.classes,
            min_size=d.min_size,
            max_size=d.max_size,
            min_per_class=d.min_per_class,
            min_class_share=d.min_class_share,
        )
        report, _ = validate_image_folder(settings.data_dir, rules)
        return report

    def prepare(self, settings: AutodiffMLPSettings) -> GrayImageSplits:
        manifest = scan_image_folder(settings.data_dir)
        images = digit_images.load_grayscale(settings.data_dir, manifest["path"], settings.data.image_size)
        labels, paths = manifest["label"].to_numpy(), manifest["path"].to_numpy()
        split = stratified_split(labels, {"test": settings.split.test, "val": settings.split.val}, settings.seed)
        splits = GrayImageSplits(
            images[split["train"]],
            labels[split["train"]],
            images[split["val"]],
            labels[split["val"]],
            images[split["test"]],
            labels[split["test"]],
            paths[split["test"]].tolist(),
        )
        return self.with_calibration(splits, settings)

    def estimator(self, settings: AutodiffMLPSettings) -> AutodiffMLPClassifier:
        """The project's own estimator (scikit-learn conventions): what train fits and active learning's rounds clone."""
        m, t = settings.model, settings.train
        return AutodiffMLPClassifier(
            hidden=m.hidden,
            activation=m.activation,
            init=m.init,
            optimizer=t.optimizer,
            lr=t.lr,
            epochs=t.epochs,
            batch_size=t.batch_size,
            seed=settings.seed,
        )

    def train(self, data: GrayImageSplits, settings: AutodiffMLPSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        model = self.estimator(settings)
        model.fit(data.X_train, data.y_train, data.X_val, data.y_val, on_epoch=on_epoch)
        params = sum(p.data.size for p in model.mlp_.parameters())
        return Trained(
            model,
            pd.DataFrame(model.history_),
            {"parameters": int(params), "train": len(data.y_train), "val": len(data.y_val), "test": len(data.y_test)},
        )

    def evaluate(self, trained: Trained, data: GrayImageSplits, settings) -> Report:
        return classifier_evaluation(trained.model, data.X_test, data.y_test, data.paths_test, trained.history)

    def score(self, model, data: GrayImageSplits, settings) -> dict[str, float]:
        return served_classifier_metrics(model.predict(data.X_test), data.y_test, sorted(settings.data.classes))

    def predictor(self, trained: Trained, data: GrayImageSplits, settings):
        size = settings.data.image_size
        return ImagePredictor(trained.model, (size, size)), data.X_test[:2]
