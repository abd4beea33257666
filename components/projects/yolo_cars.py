"""yolo-cars: a tiny YOLOv2-style detector finds cars and trucks [seed 003; the course detected cars in drive.ai
road photos with a pretrained YOLO].

Real format: ``images/`` + ``boxes.csv`` (image,x_min,y_min,x_max,y_max,class in pixels; Kaggle/Udacity
column names read too; see ``components/data/formats/box_annotations.py``). Offline sample: generated side-view cars and
trucks on crops of scikit-image's real photos (``car_scenes_sample.py``). The net predicts, per grid cell and
anchor (anchors from k-means on the training boxes' sizes), objectness, a YOLOv2 box and class scores;
decoding keeps objectness * class probability above a score threshold, then per-class non-max suppression.
Judged by mAP@0.5 on the test split, against a trivial detector (one box of the mean training size at each
image's centre). The served model takes uint8 images (N, H, W, 3) and returns one row per detection.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from components.data.formats import box_annotations as boxes_io
from components.data.samples import car_scenes as car_scenes_sample
from components.data.splits import random_split
from components.evaluation.plots import Panel, training_curves
from components.evaluation.report import Report
from components.metrics.detection import detection_metrics, kmeans_anchors
from components.models.yolo import TinyYOLO
from components.projects.base import Project, Trained, train_torch
from components.projects.settings.yolo_cars import CAPABILITIES, YoloCarsSettings
from components.serving.inputs import as_images, resize_images
from components.serving.predictor import Predictor
from components.training.detection import BoxBatches, DecodeConfig, detections_frame, predict_boxes
from components.validation.expectations import ValidationReport


@dataclass
class DetectionSplits:
    classes: tuple[str, ...]
    X_train: np.ndarray  # uint8 (N, S, S, 3)
    boxes_train: list[np.ndarray]  # per image (K, 5): x_min, y_min, x_max, y_max in pixels of X, class index
    X_val: np.ndarray
    boxes_val: list[np.ndarray]
    X_test: np.ndarray
    boxes_test: list[np.ndarray]
    names_test: list[str]

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.X_train),
            "val": len(self.X_val),
            "test": len(self.X_test),
            "train_boxes": sum(map(len, self.boxes_train)),
            "test_boxes": sum(map(len, self.boxes_test)),
        }


class DetectionPredictor(Predictor):
    """Served model: uint8 images (N, H, W, 3), or one (H, W, 3), of any size -> one row per detection:
    ``image`` (index into the input), ``x_min, y_min, x_max, y_max`` (pixels of that image), ``class``, ``score``
    (objectness * class probability), after the score filter and per-class NMS. CPU, float32. The registered
    model's signature (inferred from test images) fixes its input to data.image_size square images."""

    def __init__(self, model: TinyYOLO, classes: tuple[str, ...], image_size: int, decode: DecodeConfig):
        self.model = copy.deepcopy(model).cpu().eval()
        self.classes, self.image_size, self.decode = tuple(classes), image_size, decode

    def predict_frame(self, images) -> pd.DataFrame:
        images = as_images(images)
        resized = resize_images(images, self.image_size)
        detections = predict_boxes(
            self.model, BoxBatches.from_arrays(resized, [np.zeros((0, 5))] * len(resized)).images, self.decode
        )
        return detections_frame(detections, [(x.shape[1], x.shape[0]) for x in images], self.classes)


def centre_box_baseline(data: DetectionSplits) -> pd.DataFrame:
    """The trivial detector: on every test image one box of the mean training box size at the centre, of the
    most common training class, score 1."""
    train = np.concatenate(data.boxes_train)
    w, h = (train[:, 2:4] - train[:, :2]).mean(0)
    cls = int(np.bincount(train[:, 4].astype(int), minlength=len(data.classes)).argmax())
    size = data.X_test.shape[1]
    c = size / 2
    return pd.DataFrame(
        {
            "image": np.arange(len(data.X_test)),
            "x_min": c - w / 2,
            "y_min": c - h / 2,
            "x_max": c + w / 2,
            "y_max": c + h / 2,
            "class": data.classes[cls],
            "score": 1.0,
        }
    )


LOSS_CURVES = (
    Panel({"train_loss": "train", "val_loss": "validation"}, "YOLO loss per image", "Loss", yscale="log"),
    Panel({"val_map50": None}, "mAP@0.5", "Validation mAP@0.5", ylim=(0, 1)),
)


def examples_figure(images, truth, detections: pd.DataFrame, classes, names, threshold: float) -> plt.Figure:
    """Test images with their true boxes (white, dashed) and the detections scoring >= ``threshold``
    (one colour per class, with the score)."""
    cols = min(4, len(images))
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= len(images):
            continue
        ax.imshow(images[k])
        for x0, y0, x1, y1, _ in truth[k]:
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="white", ls="--", lw=1.2))
        shown = detections[(detections["image"] == k) & (detections["score"] >= threshold)]
        for x0, y0, x1, y1, name, score in shown[["x_min", "y_min", "x_max", "y_max", "class", "score"]].to_numpy():
            colour = colours(classes.index(name))
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=colour, lw=1.5))
            ax.text(
                x0,
                y0,
                f"{name} {score:.2f}",
                color="white",
                fontsize=6,
                va="bottom",
                bbox={"facecolor": colour, "pad": 0.5, "lw": 0},
            )
        ax.set_title(names[k], fontsize=8)
    fig.suptitle(f"test images: true boxes dashed, detections with score >= {threshold}", fontsize=9)
    fig.tight_layout()
    return fig


def pr_figure(curve: pd.DataFrame, metrics: dict) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for name, part in curve.groupby("class", sort=False):
        ax.plot(part["recall"], part["precision"], label=f"{name} (AP {metrics.get(f'ap50_{name}', 0):.2f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall at IoU 0.5 (test)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


class YoloCars(Project):
    name = "yolo-cars"
    capabilities = CAPABILITIES
    summary = "tiny YOLO (grid + k-means anchors, YOLOv2 boxes, score filter, per-class NMS) finds cars; mAP@0.5"
    primary_metric = "map50"
    Settings = YoloCarsSettings

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        return car_scenes_sample.generate(out_dir, count=80) if tiny else car_scenes_sample.generate(out_dir)

    def rules(self, settings: YoloCarsSettings) -> boxes_io.BoxRules:
        d = settings.data
        return boxes_io.BoxRules(tuple(d.classes), d.min_size, d.max_size, d.min_images, d.min_boxes_per_class)

    def validate(self, settings: YoloCarsSettings) -> ValidationReport:
        return boxes_io.validate_box_folder(settings.data_dir, self.rules(settings))[0]

    def prepare(self, settings: YoloCarsSettings) -> DetectionSplits:
        classes = tuple(settings.data.classes)
        names = boxes_io.image_files(settings.data_dir)
        X, boxes = boxes_io.load_detection_set(
            settings.data_dir, names, boxes_io.read_boxes(settings.data_dir), classes, settings.data.image_size
        )
        test, val, train = random_split(
            len(X), {"test": settings.split.test, "val": settings.split.val}, settings.seed
        ).values()
        pick = lambda idx: [boxes[i] for i in idx]  # noqa: E731
        return DetectionSplits(
            classes, X[train], pick(train), X[val], pick(val), X[test], pick(test), [names[i] for i in test]
        )

    def decode_config(self, settings: YoloCarsSettings) -> DecodeConfig:
        d = settings.decode
        return DecodeConfig(d.score_threshold, d.nms_iou, d.max_detections)

    def train(self, data: DetectionSplits, settings: YoloCarsSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        from components.training.tasks import DetectionTask

        size = settings.data.image_size
        train_boxes = np.concatenate(data.boxes_train)
        anchors = kmeans_anchors(
            (train_boxes[:, 2:4] - train_boxes[:, :2]) / size, settings.model.anchors, seed=settings.seed
        )
        torch.manual_seed(settings.seed)
        model = TinyYOLO(len(data.classes), anchors, settings.model.widths)
        task = DetectionTask(
            data.boxes_val,
            data.classes,
            self.decode_config(settings),
            settings.loss.model_dump(),
            flip=settings.augmentation == "flip",
        )
        return train_torch(
            model,
            task,
            BoxBatches.from_arrays(data.X_train, data.boxes_train),
            BoxBatches.from_arrays(data.X_val, data.boxes_val),
            settings,
            on_epoch=on_epoch,
            checkpoint_dir=checkpoint_dir,
            grid=size // model.stride,
            anchors_px=np.round(anchors * size, 1).tolist(),
            **data.sizes(),
        )

    def evaluate(self, trained: Trained, data: DetectionSplits, settings: YoloCarsSettings) -> Report:
        # The served predictor's own detections, so evaluate and score() measure the very same thing.
        served, _ = self.predictor(trained, data, settings)
        detections = served.predict_frame(data.X_test)
        metrics, curve = detection_metrics(
            detections, data.boxes_test, data.classes, operating_threshold=settings.operating_threshold
        )
        baseline, _ = detection_metrics(
            centre_box_baseline(data), data.boxes_test, data.classes, operating_threshold=settings.operating_threshold
        )
        metrics.update(
            baseline_map50=baseline["map50"],
            map50_over_baseline=metrics["map50"] - baseline["map50"],
            detections_per_image=len(detections[detections["score"] >= settings.operating_threshold])
            / len(data.X_test),
        )
        per_class = pd.DataFrame(
            {
                "class": data.classes,
                "test_boxes": [
                    int(sum((b[:, 4] == c).sum() for b in data.boxes_test)) for c in range(len(data.classes))
                ],
                "ap50": [metrics.get(f"ap50_{c}", np.nan) for c in data.classes],
                "baseline_ap50": [baseline.get(f"ap50_{c}", np.nan) for c in data.classes],
            }
        )
        n = min(settings.examples, len(data.X_test))
        figures = {
            "loss_curve": training_curves(trained.history, LOSS_CURVES, marker="o"),
            "test_detections": examples_figure(
                data.X_test[:n],
                data.boxes_test[:n],
                detections,
                data.classes,
                data.names_test[:n],
                settings.operating_threshold,
            ),
            "precision_recall": pr_figure(curve, metrics),
        }
        return Report(
            metrics, figures, {"history": trained.history, "per_class_ap": per_class, "precision_recall": curve}
        )

    def score(self, model, data: DetectionSplits, settings: YoloCarsSettings) -> dict[str, float]:
        """mAP@0.5, AP per class and precision / recall at the operating threshold, recomputed from a served
        model's detection rows."""
        frame = model.predict(data.X_test)
        return detection_metrics(
            frame, data.boxes_test, data.classes, operating_threshold=settings.operating_threshold
        )[0]

    def predictor(self, trained: Trained, data: DetectionSplits, settings: YoloCarsSettings):
        return DetectionPredictor(
            trained.model, data.classes, settings.data.image_size, self.decode_config(settings)
        ), data.X_test[:2]
