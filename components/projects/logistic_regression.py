"""logistic-regression: logistic regression as a one-neuron network, forward and backward vectorised [seed 003].

Real format: the cat-vs-non-cat h5 files (train_catvnoncat.h5, test_catvnoncat.h5). Offline sample: real LFW
faces vs non-faces from scikit-image, written in that layout (label 1 = the positive class).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.data.formats import catvnoncat
from components.data.formats.arrays import ArrayPart, ArrayRules, validate_arrays
from components.data.formats.catvnoncat import BinaryImageSet
from components.evaluation.plots import Panel, training_curves
from components.evaluation.report import Report, classification_report, served_classifier_metrics
from components.projects.base import Project, Trained
from components.projects.settings.logistic_regression import CAPABILITIES, LogisticRegressionSettings
from components.scratch.logistic import LogisticRegressionNet
from components.scratch.predictors import ImagePredictor
from components.validation.expectations import ValidationReport


class LogisticRegression(Project):
    name = "logistic-regression"
    capabilities = CAPABILITIES
    summary = "Logistic regression as a neural network, vectorised forward/backward (h5 catvnoncat layout)"
    Settings = LogisticRegressionSettings
    primary_metric = "accuracy"

    def make_sample(self, out_dir: Path) -> dict:
        return catvnoncat.generate(out_dir)

    def validate(self, settings: LogisticRegressionSettings) -> ValidationReport:
        root = Path(settings.data_dir)
        data = catvnoncat.load_catvnoncat(root)
        d = settings.data
        parts = {
            split: ArrayPart(
                getattr(data, f"X_{split}"),
                getattr(data, f"y_{split}"),
                catvnoncat.FILES[split],
                declared_labels=tuple(range(len(data.classes))),
            )
            for split in ("train", "test")
        }
        rules = ArrayRules(
            labels=(0, 1),
            height=d.image_size,
            width=d.image_size,
            channels=3,
            min_per_class=d.min_per_class,
            min_class_share=d.min_class_share,
        )
        return validate_arrays(str(root), parts, rules)

    def prepare(self, settings: LogisticRegressionSettings) -> BinaryImageSet:
        # No validation split here: calibration takes conformal.calibration of the training file's rows.
        return self.with_calibration(catvnoncat.load_catvnoncat(settings.data_dir), settings)

    def estimator(self, settings: LogisticRegressionSettings) -> LogisticRegressionNet:
        """The project's own estimator (scikit-learn conventions): what train fits and active learning's rounds clone."""
        t = settings.train
        return LogisticRegressionNet(lr=t.lr, iterations=t.iterations, record_every=t.record_every)

    def train(
        self, data: BinaryImageSet, settings: LogisticRegressionSettings, *, on_epoch, checkpoint_dir: Path
    ) -> Trained:
        model = self.estimator(settings)
        # the pipeline logs per "epoch"; for batch gradient descent one iteration is one pass over the data
        model.fit(
            data.X_train, data.y_train, on_record=lambda r: on_epoch({"epoch": r["iteration"], "train_cost": r["cost"]})
        )
        train_accuracy = float((model.predict(data.X_train) == data.y_train).mean())
        return Trained(
            model,
            pd.DataFrame(model.costs_),
            {
                "train_accuracy": train_accuracy,
                "final_cost": model.costs_[-1]["cost"],
                "train": len(data.y_train),
                **({"calibration": len(data.y_cal)} if data.y_cal is not None else {}),
                "test": len(data.y_test),
                "features": int(model.coef_.size),
            },
        )

    def evaluate(self, trained: Trained, data: BinaryImageSet, settings) -> Report:
        proba = trained.model.predict_proba(data.X_test)
        evaluation = classification_report(data.y_test, proba, trained.model.classes_)
        evaluation.metrics["train_accuracy"] = trained.info["train_accuracy"]
        cost = Panel({"cost": None}, "cost", f"Cost curve (learning rate {settings.train.lr:g})")
        evaluation.figures["cost_curve"] = training_curves(
            trained.history, [cost], x="iteration", marker=".", figsize=(5, 3.5)
        )
        evaluation.tables["cost_curve"] = trained.history
        return evaluation

    def score(self, model, data: BinaryImageSet, settings) -> dict[str, float]:
        labels = range(len(data.classes))  # the files hold 0/1; the served columns are named by the class names
        return served_classifier_metrics(model.predict(data.X_test), data.y_test, labels, data.classes)

    def predictor(self, trained: Trained, data: BinaryImageSet, settings):
        size = settings.data.image_size
        names = dict(enumerate(data.classes))
        return ImagePredictor(trained.model, (size, size, 3), names), data.X_test[:2]
