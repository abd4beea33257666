"""The YOLO detector's pieces around the one training loop: padded box batches, flips that move the boxes,
the batch loss, box prediction and the validation mAP@0.5 (``components.training.tasks.DetectionTask``
trains with them through ``components.training.loop.fit``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from components.metrics.detection import detection_metrics
from components.models.yolo import TinyYOLO, decode, encode_targets, yolo_loss


@dataclass(frozen=True)
class DecodeConfig:
    score_threshold: float = 0.05
    nms_iou: float = 0.45
    max_detections: int = 20


@dataclass
class BoxBatches:
    """Images (N, 3, S, S) in [0, 1] and their boxes padded to (N, M, 5) in fractions of the image (class -1
    pads)."""

    images: torch.Tensor
    boxes: torch.Tensor

    @classmethod
    def from_arrays(cls, images: np.ndarray, boxes: list[np.ndarray]) -> BoxBatches:
        size = images.shape[1]
        padded = torch.full((len(images), max(1, max(map(len, boxes), default=0)), 5), -1.0)
        for i, b in enumerate(boxes):
            padded[i, : len(b), :4] = torch.as_tensor(b[:, :4]) / size
            padded[i, : len(b), 4] = torch.as_tensor(b[:, 4])
        return cls(torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255, padded)

    def __len__(self) -> int:
        return len(self.images)


def flip_horizontally(images: torch.Tensor, boxes: torch.Tensor, which: torch.Tensor):
    """Mirror the images where ``which`` is True, and their boxes with them (x -> 1 - x, min and max swap)."""
    images = torch.where(which[:, None, None, None], images.flip(-1), images)
    mirrored = boxes.clone()
    mirrored[..., 0], mirrored[..., 2] = 1 - boxes[..., 2], 1 - boxes[..., 0]
    real = (boxes[..., 4] >= 0) & which[:, None]
    return images, torch.where(real[..., None], mirrored, boxes)


def batch_loss(model: TinyYOLO, images, boxes, loss_weights: dict) -> torch.Tensor:
    raw = model(images)
    return yolo_loss(raw.float(), encode_targets(boxes, model.anchors, raw.shape[1]), **loss_weights)


@torch.no_grad()
def predict_boxes(
    model: TinyYOLO, images: torch.Tensor, config: DecodeConfig, batch_size: int = 128
) -> list[np.ndarray]:
    """Per image, detections (K, 6): box in fractions of the image, class index, score."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        raw = model(images[start : start + batch_size].to(device))
        out += [d.numpy() for d in decode(model, raw, config.score_threshold, config.nms_iou, config.max_detections)]
    return out


def detections_frame(detections: list[np.ndarray], sizes: list[tuple[int, int]], classes) -> pd.DataFrame:
    """Rows of (image, x_min, y_min, x_max, y_max, class, score), boxes in pixels of each (width, height)."""
    rows = [
        np.column_stack([np.full(len(d), i), d[:, :4] * np.array([w, h, w, h]), d[:, 4:6]])
        for i, (d, (w, h)) in enumerate(zip(detections, sizes))
    ]
    table = np.concatenate(rows) if rows else np.zeros((0, 7))
    frame = pd.DataFrame(table[:, 1:5], columns=["x_min", "y_min", "x_max", "y_max"])
    frame.insert(0, "image", table[:, 0].astype(np.int64))
    frame["class"] = [classes[int(c)] for c in table[:, 5]]
    frame["score"] = table[:, 6]
    return frame


def validation_map(model, data: BoxBatches, truth: list[np.ndarray], classes, config: DecodeConfig) -> float:
    size = data.images.shape[-1]
    frame = detections_frame(predict_boxes(model, data.images, config), [(size, size)] * len(data), classes)
    return detection_metrics(frame, truth, classes)[0]["map50"]
