"""face-mask-transfer: face-mask's data and validation, a pretrained backbone instead of the custom CNN [seed 004].

The registered model is ``model.backbone`` (default EfficientNet-Lite0 with its real ImageNet weights: frozen
base + new head, then the top layers fine-tuned). ``compare`` trains other arms on the same splits, each a
child run with its curves and test metrics, e.g. the same network from scratch: does transfer transfer?
VGG16, ResNet50 and InceptionV3 have no offline weights and are slow on a CPU; add them as arms with a weights
file, or from scratch on a GPU (see the README).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from components.data.formats.images import resize_images
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
from components.training.estimators import TorchImageClassifier
from components.training.transfer_estimator import TransferImageClassifier


@dataclass
class Arm:
    name: str
    params: dict
    estimator: TransferImageClassifier | TorchImageClassifier
    history: pd.DataFrame
    image_size: int


@dataclass
class ComparedTrained(Trained):
    arms: list[Arm] = field(default_factory=list)


def epochs_to_target(history: pd.DataFrame, target: float) -> float:
    reached = history.loc[history["val_accuracy"] >= target, "epoch"]
    return float(reached.iloc[0]) if len(reached) else math.nan


def arm_estimator(
    settings: FaceMaskTransferSettings, arm: ArmSettings
) -> TransferImageClassifier | TorchImageClassifier:
    """A backbone arm: the main model's estimator with the arm's backbone, weights, phase 1 epochs (default: both
    main phases) and fine-tuned layers. A network arm: that catalog network from scratch, for the arm's epochs
    (default: the main model's). Every other parameter (LR, schedule, augmentation, splits' seed) is the main
    model's, so the arms differ in the model only."""
    if arm.network is not None:
        return TorchImageClassifier(
            model=arm.network,
            train=settings.train.model_copy(update={"epochs": arm.epochs or settings.train.epochs}),
            augmentation=settings.augmentation,
            device=settings.device,
            seed=settings.seed,
            progress=False,
        )
    epochs = arm.epochs or settings.train.epochs + (settings.finetune.epochs if settings.finetune.layers else 0)
    return transfer_estimator(
        settings,
        None,
        model=settings.model.model_copy(update={"backbone": arm.backbone, "weights": arm.weights}),
        train=settings.train.model_copy(update={"epochs": epochs}),
        finetune=settings.finetune.model_copy(update={"layers": arm.finetune_layers}),
    )


def arm_params(arm: ArmSettings, est, history: pd.DataFrame, image_size: int) -> dict:
    """What the arm's child run logs as its params."""
    common = {"epochs": est.train.epochs, "image_size": image_size}
    if arm.network is not None:
        return {"network": arm.network.name, **arm.network.kwargs, "pretrained": False, **common}
    return {
        "backbone": arm.backbone,
        "weights": arm.weights,
        "finetune_layers": arm.finetune_layers,
        "pretrained": est.module_.pretrained,
        "phase_epochs": phase_epochs(history),
        **common,
    }


COMPARED = ("accuracy", "precision", "recall", "f1", "roc_auc")  # seed 004's comparison of the models


def metric_bars(table: pd.DataFrame):
    """One group of bars per model: its test accuracy, precision, recall, F1 and ROC-AUC."""
    columns = [f"test_{k}" for k in COMPARED if f"test_{k}" in table]
    fig, ax = plt.subplots(figsize=(max(6.5, 1.1 * len(table)), 4))
    width = 0.8 / len(columns)
    for j, column in enumerate(columns):
        ax.bar([i + j * width for i in range(len(table))], table[column], width, label=column.removeprefix("test_"))
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(table))], table["arm"], rotation=20, ha="right", fontsize=8)
    ax.set(ylim=(0, 1.05), ylabel="test split", title="face-mask: the models compared (seed 004)")
    ax.legend(fontsize=8, ncols=len(columns), loc="lower right")
    fig.tight_layout()
    return fig


class FaceMaskTransfer(TransferProject, FaceMask):  # FaceMask's sample (same bytes) and validation
    name = "face-mask-transfer"
    summary = "Face-mask detector by transfer learning (EfficientNet-Lite0 ImageNet weights; backbones compared)"
    Settings = FaceMaskTransferSettings

    def train(self, data: ImageSplits, settings: FaceMaskTransferSettings, *, on_epoch, checkpoint_dir: Path):
        main = super().train(data, settings, on_epoch=on_epoch, checkpoint_dir=checkpoint_dir)
        arms = []
        log = logging.getLogger("dlfolio")
        for i, arm in enumerate(settings.compare.arms, 1):
            size = arm.image_size or settings.data.image_size
            est = arm_estimator(settings, arm)
            started = time.perf_counter()
            est.fit(resize_images(data.X_train, size), data.y_train, resize_images(data.X_val, size), data.y_val)
            history = pd.DataFrame(est.fit_result_.as_rows())
            arms.append(Arm(arm.name, arm_params(arm, est, history, size), est, history, size))
            # The arms train for a minute with nothing else to show: say where it is.
            log.info(
                "compare %d/%d: %s trained in %.1f s, best val_accuracy %.3f",
                i,
                len(settings.compare.arms),
                arm.name,
                time.perf_counter() - started,
                history["val_accuracy"].max() if "val_accuracy" in history else float("nan"),
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
        rows = [
            {
                "arm": f"{settings.model.backbone} (registered)",
                **self._summary(trained.history, evaluation.metrics, target),
            }
        ]
        for arm in getattr(trained, "arms", []):
            report = classification_report(
                data.y_test,
                arm.estimator.predict_proba(resize_images(data.X_test, arm.image_size)),
                arm.estimator.classes_,
            )
            for fig in report.figures.values():
                plt.close(fig)
            summary = self._summary(arm.history, report.metrics, target)
            evaluation.children.append(
                ChildRun(
                    arm.name,
                    arm.params,
                    {**report.metrics, **{k: v for k, v in summary.items() if not math.isnan(v)}},
                    arm.history.drop(columns=["phase"], errors="ignore").rename(columns={"epoch": "step"}),
                )
            )
            curves[arm.name] = arm.history
            rows.append({"arm": arm.name, **summary})
        evaluation.tables["comparison"] = pd.DataFrame(rows)
        evaluation.figures["comparison_metrics"] = metric_bars(evaluation.tables["comparison"])
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
            **{f"test_{k}": metrics[k] for k in COMPARED if k in metrics},
            "epochs": float(len(history)),
            "best_val_accuracy": float(history["val_accuracy"].max()),
            "epochs_to_target": epochs_to_target(history, target),
        }
