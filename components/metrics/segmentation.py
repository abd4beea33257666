"""Segmentation pieces shared by training, evaluation and serving: a dataset that flips image and mask
together, batched mask prediction, and IoU from a pixel confusion matrix."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2

from components.training.augment import normalize


class SegmentationDataset(torch.utils.data.Dataset):
    """uint8 images (N, H, W, 3) and class-index masks (N, H, W) -> (normalised float image, long mask).

    With ``flip`` a random horizontal flip is applied to the image and its mask as one sample (torchvision v2
    transforms a ``tv_tensors.Mask`` with the image it comes with), so every pixel keeps its label.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, flip: bool = False):
        self.images = torch.as_tensor(images).permute(0, 3, 1, 2).contiguous()
        self.masks = torch.as_tensor(masks, dtype=torch.long)
        self.joint = v2.RandomHorizontalFlip() if flip else None
        self.normalize = normalize()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        image, mask = tv_tensors.Image(self.images[i]), tv_tensors.Mask(self.masks[i])
        if self.joint is not None:
            image, mask = self.joint(image, mask)
        return self.normalize(image).as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)


@torch.no_grad()
def predict_masks(model: nn.Module, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class-index masks (N, H, W) uint8 for uint8 images (N, H, W, 3), in float32 on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    data = SegmentationDataset(images, np.zeros(images.shape[:3], dtype=np.uint8))
    out = []
    for start in range(0, len(data), batch_size):
        x = torch.stack([data[i][0] for i in range(start, min(start + batch_size, len(data)))]).to(device)
        out.append(model(x).argmax(1).to(torch.uint8).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *images.shape[1:3]), dtype=np.uint8)


def confusion(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixel counts: row = true class, column = predicted class."""
    index = truth.astype(np.int64).ravel() * num_classes + predicted.astype(np.int64).ravel()
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """TP / (TP + FP + FN) per class; NaN for a class in neither truth nor prediction (nothing to score)."""
    tp = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - tp
    return np.divide(tp, union, out=np.full(len(tp), np.nan), where=union > 0)


def segmentation_metrics(truth: np.ndarray, predicted: np.ndarray, classes) -> dict[str, float]:
    """mean_iou (over classes present in truth or prediction), pixel_accuracy and iou_<class>."""
    cm = confusion(truth, predicted, len(classes))
    iou = iou_per_class(cm)
    metrics = {"mean_iou": float(np.nanmean(iou)), "pixel_accuracy": float(np.trace(cm) / max(1, cm.sum()))}
    metrics.update({f"iou_{c}": float(v) for c, v in zip(classes, iou) if not np.isnan(v)})
    return metrics
