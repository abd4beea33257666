"""mnist-mc-dropout: a dropout CNN whose dropout stays on at test time; T passes give its uncertainty [seed 000].

Evaluation adds, to the usual test metrics, the MC-averaged accuracy, predictive entropy and mutual information
on the test images and on out-of-distribution probes (the test images turned 90 degrees; another handwriting
dataset), the ratio of OOD to test entropy, the expected calibration error and a reliability diagram.
The registered model returns each prediction with its predictive entropy and mutual information.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.data import ood
from components.evaluation.report import Report
from components.evaluation.uncertainty import (
    MCDropoutPredictor,
    entropy_figure,
    mutual_information,
    predictive_entropy,
    reliability_figure,
    reliability_table,
)
from components.projects.array_classification import resize
from components.projects.base import Trained
from components.projects.image_classification import ImageSplits
from components.projects.mnist import MnistProject
from components.projects.settings.mnist_mc_dropout import MnistMCDropoutSettings


def ood_inputs(name: str, data: ImageSplits, limit: int) -> np.ndarray:
    size, channels = data.X_test.shape[1], data.X_test.shape[3]
    if name == "rotated":
        return ood.rotated(data.X_test[:limit])
    if name == "inverted":
        return ood.inverted(data.X_test[:limit])
    images = resize(ood.sklearn_digits(28, limit), size)
    return np.repeat(images, channels, axis=-1) if channels != 1 else images


class MnistMCDropout(MnistProject):
    name = "mnist-mc-dropout"
    summary = "CNN with Monte Carlo dropout on MNIST IDX (offline: Fashion-MNIST): entropy, mutual information, OOD"
    Settings = MnistMCDropoutSettings

    def evaluate(self, trained: Trained, data: ImageSplits, settings: MnistMCDropoutSettings) -> Report:
        evaluation = super().evaluate(trained, data, settings)
        u = settings.uncertainty
        est = trained.model
        n = min(u.max_inputs, len(data.y_test))
        probs = est.predict_proba_samples(data.X_test[:n], u.passes)
        y_idx = np.searchsorted(est.classes_, data.y_test[:n])
        mean = probs.mean(axis=0)
        table, ece = reliability_table(mean, y_idx, u.bins)
        entropies = {"test": predictive_entropy(probs)}
        rows = [
            {
                "set": "test",
                "inputs": n,
                "entropy": entropies["test"].mean(),
                "mutual_information": mutual_information(probs).mean(),
            }
        ]
        for name in u.ood:
            ood_probs = est.predict_proba_samples(ood_inputs(name, data, n), u.passes)
            entropies[name] = predictive_entropy(ood_probs)
            rows.append(
                {
                    "set": name,
                    "inputs": len(entropies[name]),
                    "entropy": entropies[name].mean(),
                    "mutual_information": mutual_information(ood_probs).mean(),
                }
            )
        summary = pd.DataFrame(rows)
        summary["entropy_ratio"] = summary["entropy"] / summary["entropy"].iloc[0]
        m = evaluation.metrics
        m["mc_accuracy"] = float((mean.argmax(1) == y_idx).mean())
        m["ece"] = ece
        for row in summary.itertuples():
            m[f"{row.set}_entropy"] = float(row.entropy)
            m[f"{row.set}_mutual_information"] = float(row.mutual_information)
            if row.set != "test":
                m[f"{row.set}_entropy_ratio"] = float(row.entropy_ratio)
        ood_all = np.concatenate([entropies[name] for name in u.ood])
        m["ood_entropy_ratio"] = float(ood_all.mean() / entropies["test"].mean())
        evaluation.figures["reliability_diagram"] = reliability_figure(table, ece)
        evaluation.figures["uncertainty_by_set"] = entropy_figure(entropies, len(est.classes_))
        evaluation.tables["reliability"] = table
        evaluation.tables["uncertainty"] = summary
        return evaluation

    def predictor(self, trained: Trained, data: ImageSplits, settings: MnistMCDropoutSettings):
        predictor = MCDropoutPredictor(trained.model, settings.data.image_size, settings.uncertainty.passes)
        return predictor, data.X_test[:2]
