"""face-mask-transfer: face-mask's data and validation, a pretrained backbone instead of the custom CNN [seed 004].

The registered model is ``model.backbone`` (default EfficientNet-Lite0 with its real ImageNet weights: frozen
base + new head, then the top layers fine-tuned). ``compare`` trains other arms on the same splits, each a
child run with its curves and test metrics, e.g. the same network from scratch: does transfer transfer?
VGG16, ResNet50 and InceptionV3 have no offline weights and are slow on a CPU; add them as arms with a weights
file, or from scratch on a GPU (see the README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from components.evaluation.plots import Panel, compare_curves
from components.evaluation.report import ChildRun, Report, classification_report
from components.projects.base import Trained
from components.projects.face_mask import FaceMask
from components.projects.image_classification import ImageSplits
from components.projects.settings.face_mask_transfer import ArmSettings, FaceMaskTransferSettings
from components.projects.transfer_learning import (
    TransferProject,
    phase_epochs,
    transfer_estimator,
)
from components.training.transfer_estimator import TransferImageClassifier


@dataclass
class Arm:
    name: str
    params: dict
    estimator: TransferImageClassifier
    history: pd.DataFrame


@dataclass
class ComparedTrained(Trained):
    arms: list[Arm] = field(default_factory=list)


def epochs_to_target(history: pd.DataFrame, target: float) -> float:
    reached = history.loc[history["val_accuracy"] >= target, "epoch"]
    return float(reached.iloc[0]) if len(reached) else math.nan


def arm_estimator(settings: FaceMaskTransferSettings, arm: ArmSettings) -> TransferImageClassifier:
    """The main model's estimator with the arm's backbone, weights, phase 1 epochs (default: both main phases)
    and fine-tuned layers; every other parameter (head, LR, augmentation, splits' seed) is the main model's."""
    epochs = arm.epochs or settings.train.epochs + (settings.finetune.epochs if settings.finetune.layers else 0)
    return transfer_estimator(
        settings,
        None,
        model=settings.model.model_copy(update={"backbone": arm.backbone, "weights": arm.weights}),
        train=settings.train.model_copy(update={"epochs": epochs}),
        finetune=settings.finetune.model_copy(update={"layers": arm.finetune_layers}),
    )


class FaceMaskTransfer(TransferProject, FaceMask):  # FaceMask's sample (same bytes) and validation
    name = "face-mask-transfer"
    summary = "Face-mask detector by transfer learning (EfficientNet-Lite0 ImageNet weights; backbones compared)"
    Settings = FaceMaskTransferSettings

    def train(self, data: ImageSplits, settings: FaceMaskTransferSettings, *, on_epoch, checkpoint_dir: Path):
        main = super().train(data, settings, on_epoch=on_epoch, checkpoint_dir=checkpoint_dir)
        arms = []
        for arm in settings.compare.arms:
            est = arm_estimator(settings, arm)
            est.fit(data.X_train, data.y_train, data.X_val, data.y_val)
            history = pd.DataFrame(est.fit_result_.as_rows())
            changed = dict(
                backbone=arm.backbone, weights=arm.weights, epochs=est.train.epochs, finetune_layers=arm.finetune_layers
            )  # what the arm's child run logs as its params
            arms.append(
                Arm(
                    arm.name,
                    {**changed, "pretrained": est.module_.pretrained, "phase_epochs": phase_epochs(history)},
                    est,
                    history,
                )
            )
        return ComparedTrained(main.model, main.history, main.info, arms)

    def evaluate(self, trained: ComparedTrained, data: ImageSplits, settings: FaceMaskTransferSettings) -> Report:
        evaluation = super().evaluate(trained, data, settings)
        target = settings.compare.target_accuracy
        reached = epochs_to_target(trained.history, target)
        if not math.isnan(reached):  # metrics.json must stay valid JSON: no NaN there
            evaluation.metrics["epochs_to_target"] = reached
        curves = {
            f"{settings.model.backbone} ({'pretrained' if trained.info['pretrained'] else 'scratch'}, "
            f"registered)": trained.history
        }
        rows = [{"arm": "registered", **self._summary(trained.history, evaluation.metrics, target)}]
        for arm in getattr(trained, "arms", []):
            report = classification_report(
                data.y_test, arm.estimator.predict_proba(data.X_test), arm.estimator.classes_
            )
            for fig in report.figures.values():
                plt.close(fig)
            summary = self._summary(arm.history, report.metrics, target)
            evaluation.children.append(
                ChildRun(
                    arm.name,
                    arm.params,
                    {**report.metrics, **{k: v for k, v in summary.items() if not math.isnan(v)}},
                    arm.history.drop(columns=["phase"]).rename(columns={"epoch": "step"}),
                )
            )
            curves[arm.name] = arm.history
            rows.append({"arm": arm.name, **summary})
        evaluation.tables["comparison"] = pd.DataFrame(rows)
        evaluation.figures["comparison"] = compare_curves(
            curves,
            Panel(
                {"val_accuracy": None},
                "validation accuracy",
                "Transfer vs. the same network from scratch",
                ylim=(0, 1.02),
                references={f"target {target:.0%}": target},
                legend={"fontsize": 8},
            ),
            figsize=(6.5, 4),
        )
        return evaluation

    @staticmethod
    def _summary(history: pd.DataFrame, metrics: dict, target: float) -> dict:
        return {
            "test_accuracy": metrics["accuracy"],
            "test_f1": metrics["f1"],
            "epochs": float(len(history)),
            "best_val_accuracy": float(history["val_accuracy"].max()),
            "epochs_to_target": epochs_to_target(history, target),
        }
