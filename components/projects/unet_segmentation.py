"""unet-segmentation: a small U-Net labels every pixel with a class [seed 003; the course segmented CARLA scenes].

Real format: ``images/<name>.png`` + ``masks/<name>.png`` (one channel, each pixel a class index) and an
optional ``classes.txt`` (see ``components/data/formats/segmentation_masks.py``). Offline sample: scenes cut from
scikit-image's real photos with horses, discs, boxes and triangles pasted in (``segmentation_sample.py``).
Judged by mean IoU over the classes on the test split, against predicting the training split's majority
class everywhere. The served model takes uint8 images (N, H, W, 3) and returns each mask as a base64 PNG in
the dataset's own mask format (``segmentation_masks.decode_mask`` reads it back).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from components.data.formats import segmentation_masks as masks_io
from components.data.samples import segmentation as segmentation_sample
from components.data.splits import random_split
from components.errors import DataFormatError
from components.evaluation.plots import Panel, training_curves
from components.evaluation.report import Report
from components.metrics.segmentation import SegmentationDataset, predict_masks, segmentation_metrics
from components.models.unet import UNet
from components.projects.base import Project, Trained, train_torch
from components.projects.settings.unet_segmentation import CAPABILITIES, UNetSegmentationSettings
from components.serving.inputs import as_images, resize_images
from components.serving.predictor import Predictor
from components.validation.expectations import ValidationReport


@dataclass
class SegmentationSplits:
    classes: tuple[str, ...]
    X_train: np.ndarray  # uint8 (N, H, W, 3)
    Y_train: np.ndarray  # uint8 class indices (N, H, W)
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    names_test: list[str]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.X_train), "val": len(self.X_val), "test": len(self.X_test)}


def resolve_classes(settings: UNetSegmentationSettings) -> tuple[str, ...]:
    """The class names: ``classes.txt`` beside the data, or ``data.classes``; both given, they must agree."""
    from_file, configured = masks_io.read_classes(settings.data_dir), settings.data.classes
    if from_file and configured and tuple(configured) != from_file:
        raise DataFormatError(
            f"{settings.data_dir / masks_io.CLASSES_FILE} names {list(from_file)} but params.yaml "
            f"data.classes is {list(configured)}: make them agree, or set data.classes to null"
        )
    classes = from_file or configured
    if not classes:
        raise DataFormatError(
            f"no class names: write {settings.data_dir / masks_io.CLASSES_FILE} (one name per line, "
            "line i naming mask index i-1) or set data.classes in params.yaml"
        )
    return tuple(classes)


class SegmentationPredictor(Predictor):
    """Served model: uint8 images (N, H, W, 3), or one (H, W, 3), of any size -> one row per image with
    ``mask`` (a base64 single-channel PNG of class indices at the input's size), ``height``, ``width`` and
    ``share_<class>``, the share of the image's pixels given to each class. Runs on the CPU in float32."""

    def __init__(self, model, classes: tuple[str, ...], image_size: int):
        self.model = copy.deepcopy(model).cpu().eval()
        self.classes, self.image_size = tuple(classes), image_size

    def masks(self, images) -> list[np.ndarray]:
        images = as_images(images)
        predicted = predict_masks(self.model, resize_images(images, self.image_size))
        # Back to each input's own size; nearest neighbour keeps every pixel a real class index.
        return [
            m if m.shape == x.shape[:2] else np.asarray(Image.fromarray(m).resize(x.shape[1::-1], Image.NEAREST))
            for m, x in zip(predicted, images)
        ]

    def predict_frame(self, images) -> pd.DataFrame:
        masks = self.masks(images)
        frame = pd.DataFrame(
            {
                "mask": [masks_io.encode_mask(m) for m in masks],
                "height": [m.shape[0] for m in masks],
                "width": [m.shape[1] for m in masks],
            }
        )
        for k, name in enumerate(self.classes):
            frame[f"share_{name}"] = [float(np.mean(m == k)) for m in masks]
        return frame


def majority_baseline(data: SegmentationSplits) -> dict[str, float]:
    """Metrics of painting every test pixel with the training split's most common class."""
    majority = int(np.bincount(data.Y_train.ravel(), minlength=len(data.classes)).argmax())
    return segmentation_metrics(data.Y_test, np.full_like(data.Y_test, majority), data.classes)


LOSS_CURVES = (
    Panel({"train_loss": "train", "val_loss": "validation"}, "pixel cross-entropy", "Loss"),
    Panel({"val_pixel_accuracy": None}, "pixel accuracy", "Validation pixel accuracy"),
)


def examples_figure(images, truth, predicted, classes, names) -> plt.Figure:
    """Rows of test image / true mask / predicted mask, in one fixed colour per class."""
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20", len(classes))
    fig, axes = plt.subplots(len(images), 3, figsize=(6.5, 2.1 * len(images)), squeeze=False)
    for row, (x, t, p, name) in enumerate(zip(images, truth, predicted, names)):
        for ax, shown, title in zip(axes[row], (x, t, p), (name, "true mask", "predicted mask")):
            ax.imshow(
                shown,
                **(
                    {}
                    if shown.ndim == 3
                    else {"cmap": cmap, "vmin": -0.5, "vmax": len(classes) - 0.5, "interpolation": "nearest"}
                ),
            )
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(k)) for k in range(len(classes))]
    fig.legend(handles, classes, loc="lower center", ncol=min(6, len(classes)), fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def iou_figure(table: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(table), 3.5))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["iou"], 0.4, label="U-Net")
    ax.bar(x + 0.2, table["baseline_iou"], 0.4, label="majority class", color="grey")
    ax.set_xticks(x, table["class"], rotation=30, ha="right")
    ax.set(ylim=(0, 1), ylabel="IoU (test)", title="Per-class IoU")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def network(settings: UNetSegmentationSettings, num_classes: int) -> UNet:
    """The U-Net with initial weights drawn from the settings' seed: fit() seeds torch only once the net
    exists, and torch's own start-up seed differs from process to process (mean IoU 0.820 / 0.833 from one
    commit before)."""
    import torch

    torch.manual_seed(settings.seed)
    return UNet(num_classes, widths=settings.model.widths)


class UNetSegmentation(Project):
    name = "unet-segmentation"
    capabilities = CAPABILITIES
    summary = "U-Net (transpose convs, skip connections) labels every pixel; mean IoU (images + class-index masks)"
    primary_metric = "mean_iou"
    Settings = UNetSegmentationSettings

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        return segmentation_sample.generate(out_dir, count=60) if tiny else segmentation_sample.generate(out_dir)

    def rules(self, settings: UNetSegmentationSettings) -> masks_io.SegmentationRules:
        d = settings.data
        return masks_io.SegmentationRules(
            resolve_classes(settings), d.min_size, d.max_size, d.min_images, d.min_class_share, d.max_class_share
        )

    def validate(self, settings: UNetSegmentationSettings) -> ValidationReport:
        report, _ = masks_io.validate_segmentation_folder(settings.data_dir, self.rules(settings))
        return report

    def prepare(self, settings: UNetSegmentationSettings) -> SegmentationSplits:
        manifest = masks_io.scan_pairs(settings.data_dir)
        X, Y = masks_io.load_pairs(settings.data_dir, manifest, settings.data.image_size)
        test, val, train = random_split(
            len(X), {"test": settings.split.test, "val": settings.split.val}, settings.seed
        ).values()
        return SegmentationSplits(
            resolve_classes(settings),
            X[train],
            Y[train],
            X[val],
            Y[val],
            X[test],
            Y[test],
            manifest["name"].to_numpy()[test].tolist(),
        )

    def train(
        self, data: SegmentationSplits, settings: UNetSegmentationSettings, *, on_epoch, checkpoint_dir: Path
    ) -> Trained:
        from components.training.tasks import SegmentationTask

        model = network(settings, len(data.classes))
        return train_torch(
            model,
            SegmentationTask(),
            SegmentationDataset(data.X_train, data.Y_train, flip=settings.augmentation == "flip"),
            SegmentationDataset(data.X_val, data.Y_val),
            settings,
            on_epoch=on_epoch,
            checkpoint_dir=checkpoint_dir,
            widths=list(settings.model.widths),
            **data.sizes(),
        )

    def evaluate(self, trained: Trained, data: SegmentationSplits, settings: UNetSegmentationSettings) -> Report:
        # The served predictor's own masks, so evaluate and score() measure the very same thing.
        served = SegmentationPredictor(trained.model, data.classes, settings.data.image_size)
        predicted = np.stack(served.masks(data.X_test))
        metrics = segmentation_metrics(data.Y_test, predicted, data.classes)
        baseline = majority_baseline(data)
        metrics.update(
            baseline_mean_iou=baseline["mean_iou"],
            baseline_pixel_accuracy=baseline["pixel_accuracy"],
            mean_iou_over_baseline=metrics["mean_iou"] - baseline["mean_iou"],
        )
        shares = np.bincount(data.Y_test.ravel(), minlength=len(data.classes)) / data.Y_test.size
        per_class = pd.DataFrame(
            {
                "class": data.classes,
                "test_pixel_share": shares,
                "iou": [metrics.get(f"iou_{c}", np.nan) for c in data.classes],
                "baseline_iou": [baseline.get(f"iou_{c}", 0.0) for c in data.classes],
            }
        )
        n = min(settings.examples, len(data.X_test))
        figures = {
            "loss_curve": training_curves(trained.history, LOSS_CURVES, marker="o"),
            "test_predictions": examples_figure(
                data.X_test[:n], data.Y_test[:n], predicted[:n], data.classes, data.names_test[:n]
            ),
            "per_class_iou": iou_figure(per_class),
        }
        return Report(metrics, figures, {"history": trained.history, "per_class_iou": per_class})

    def score(self, model, data: SegmentationSplits, settings: UNetSegmentationSettings) -> dict[str, float]:
        """mean IoU, pixel accuracy and per-class IoU recomputed from a served model's ``mask`` column."""
        frame = model.predict(data.X_test)
        predicted = np.stack([masks_io.decode_mask(m) for m in frame["mask"]])
        return segmentation_metrics(data.Y_test, predicted, data.classes)

    def predictor(self, trained: Trained, data: SegmentationSplits, settings: UNetSegmentationSettings):
        return SegmentationPredictor(trained.model, data.classes, settings.data.image_size), data.X_test[:2]
