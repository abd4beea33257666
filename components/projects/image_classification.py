"""Image classification from a folder of class subfolders: the shape shared by the vision projects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.images import load_images
from components.data.splits import grouped_split, groups_from_names, stratified_split
from components.evaluation.report import Report, classifier_evaluation, served_classifier_metrics
from components.models.params import count_parameters
from components.projects.base import Project, Trained
from components.projects.settings.image_classification import CAPABILITIES, ImageClassificationSettings
from components.serving.predictors import ImageClassifierPredictor
from components.training.estimators import TorchImageClassifier
from components.validation.expectations import ImageRules, ValidationReport, validate_image_folder


@dataclass
class ImageSplits:
    classes: np.ndarray
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    paths_test: list[str]
    # Held out for conformal calibration only: never trained on, never used for early stopping.
    X_cal: np.ndarray | None = None
    y_cal: np.ndarray | None = None
    paths_cal: list[str] | None = None
    paths_train: list[str] | None = None  # what `dlfolio label export` shows a labeller
    paths_val: list[str] | None = None

    def sizes(self) -> dict[str, int]:
        sizes = {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}
        return sizes if self.y_cal is None else {**sizes, "calibration": len(self.y_cal)}


class ImageClassificationProject(Project):
    Settings = ImageClassificationSettings
    capabilities = CAPABILITIES

    def rules(self, settings: ImageClassificationSettings) -> ImageRules:
        d = settings.data
        return ImageRules(
            classes=d.classes,
            min_size=d.min_size,
            max_size=d.max_size,
            min_per_class=d.min_per_class,
            min_class_share=d.min_class_share,
            group_pattern=d.group_pattern,
        )

    def validate(self, settings: ImageClassificationSettings) -> ValidationReport:
        report, _ = validate_image_folder(settings.data_dir, self.rules(settings))
        return report

    def prepare(self, settings: ImageClassificationSettings) -> ImageSplits:
        from components.data.formats.images import scan_image_folder

        manifest = scan_image_folder(settings.data_dir)
        images = load_images(settings.data_dir, manifest, settings.data.image_size)
        labels = manifest["label"].to_numpy()
        fractions = {"test": settings.split.test, "val": settings.split.val}
        if settings.conformal is not None and settings.conformal.calibrate_on == "held_out":
            # carved last, so test and val are the same with or without it
            fractions["calibration"] = settings.conformal.calibration
        if settings.data.group_pattern:  # one person in one split: a face seen in training is not a test
            groups = groups_from_names(manifest["path"], settings.data.group_pattern)
            split = grouped_split(groups, fractions, settings.seed)
        else:
            split = stratified_split(labels, fractions, settings.seed)
        pick = lambda name: (images[split[name]], labels[split[name]])  # noqa: E731
        (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = pick("train"), pick("val"), pick("test")
        X_cal, y_cal = pick("calibration") if "calibration" in split else (None, None)
        paths = lambda name: manifest["path"].to_numpy()[split[name]].tolist() if name in split else None  # noqa: E731
        splits = ImageSplits(
            np.array(sorted(settings.data.classes)),
            X_tr,
            y_tr,
            X_va,
            y_va,
            X_te,
            y_te,
            paths("test"),
            X_cal,
            y_cal,
            paths("calibration"),
            paths("train"),
            paths("val"),
        )
        return self.with_calibration(splits, settings)  # calibrate_on: validation

    def label_store(self, settings: ImageClassificationSettings, unlabelled_dir: Path | None = None):
        """Where `dlfolio label import` writes a person's labels: the class folders themselves
        (components/active/dataset.py); ``unlabelled_dir`` holds the images nobody has labelled yet."""
        from components.active.dataset import ImageFolderLabels

        return ImageFolderLabels(Path(settings.data_dir), tuple(settings.data.classes), unlabelled_dir)

    def estimator(
        self, settings: ImageClassificationSettings, checkpoint_dir: Path | None = None
    ) -> TorchImageClassifier:
        return TorchImageClassifier(
            model=settings.model,
            train=settings.train,
            augmentation=settings.augmentation,
            device=settings.device,
            seed=settings.seed,
            checkpoint_dir=checkpoint_dir,
        )

    def train(self, data: ImageSplits, settings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        est = self.estimator(settings, checkpoint_dir)
        est.fit(data.X_train, data.y_train, data.X_val, data.y_val, on_epoch=on_epoch)
        history = pd.DataFrame(est.fit_result_.as_rows())
        params = count_parameters(est.module_)
        return Trained(
            est,
            history,
            {
                "best_epoch": est.fit_result_.best_epoch,
                "parameters": params,
                "stopped_early": est.fit_result_.stopped_early,
                **data.sizes(),
            },
        )

    def evaluate(self, trained: Trained, data: ImageSplits, settings) -> Report:
        return classifier_evaluation(trained.model, data.X_test, data.y_test, data.paths_test, trained.history)

    def score(self, model, data: ImageSplits, settings) -> dict[str, float]:
        # one p_<class> column per class, as ImageClassifierPredictor serves
        return served_classifier_metrics(model.predict(data.X_test), data.y_test, data.classes)

    def predictor(self, trained: Trained, data: ImageSplits, settings):
        return ImageClassifierPredictor(trained.model, settings.data.image_size), data.X_test[:2]
