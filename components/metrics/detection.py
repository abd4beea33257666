"""Box geometry and detection metrics, written out: IoU, non-max suppression, k-means anchors, AP and mAP.

Boxes are ``(x_min, y_min, x_max, y_max)`` rows. ``box_iou`` and ``nms`` match ``torchvision.ops.box_iou`` and
``torchvision.ops.nms`` (the tests check it); the AP is Pascal VOC's all-point interpolated area under the
precision-recall curve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 4) x (M, 4) -> (N, M) intersection over union."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / union.clamp(min=1e-12)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-max suppression: indices of the kept boxes, highest score first. A box is dropped when it
    overlaps an already kept, higher-scoring box by IoU > ``iou_threshold``."""
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Non-max suppression within each class only: a car never suppresses an overlapping truck."""
    keep = [
        idx[nms(boxes[idx], scores[idx], iou_threshold)]
        for idx in (torch.nonzero(classes == c).flatten() for c in torch.unique(classes))
    ]
    if not keep:
        return torch.zeros(0, dtype=torch.long)
    keep = torch.cat(keep)
    return keep[torch.argsort(scores[keep], descending=True, stable=True)]


def kmeans_anchors(wh: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """``k`` anchor (width, height) pairs by k-means on box sizes with YOLOv2's distance 1 - IoU (boxes
    compared as if they shared a centre), sorted by area."""
    wh = np.asarray(wh, dtype=np.float64)
    rng = np.random.default_rng(seed)
    centres = wh[rng.choice(len(wh), size=k, replace=len(wh) < k)]
    for _ in range(iterations):
        inter = np.minimum(wh[:, None], centres[None]).prod(-1)
        iou = inter / (wh.prod(-1)[:, None] + centres.prod(-1)[None] - inter)
        assign = iou.argmax(1)
        updated = np.array([wh[assign == j].mean(0) if np.any(assign == j) else centres[j] for j in range(k)])
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres[np.argsort(centres.prod(-1))]


# --- metrics ------------------------------------------------------------------------------------------------


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP (Pascal VOC 2010+): the area under the precision-recall curve after making
    precision monotonically non-increasing from the right."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def match_detections(
    detections: pd.DataFrame, truth: list[np.ndarray], cls: int, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """For one class: scores and true-positive flags of its detections (score-sorted) and its number of true
    boxes. A detection is a true positive when it overlaps a not yet matched true box of its image and class
    with IoU >= ``iou_threshold``; each true box matches at most once, so duplicates count as false positives."""
    dets = detections[detections["class_index"] == cls].sort_values("score", ascending=False, kind="stable")
    gt = {i: torch.as_tensor(t[t[:, 4] == cls, :4], dtype=torch.float64) for i, t in enumerate(truth)}
    used = {i: np.zeros(len(b), dtype=bool) for i, b in gt.items()}
    tp = np.zeros(len(dets), dtype=bool)
    boxes = torch.tensor(dets[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64))
    for k, image in enumerate(dets["image"].to_numpy()):
        g = gt.get(int(image))
        if g is None or len(g) == 0:
            continue
        iou = box_iou(boxes[k : k + 1], g)[0].numpy()
        iou[used[int(image)]] = -1  # VOC: the best overlap among the still unmatched boxes
        best = int(iou.argmax())
        if iou[best] >= iou_threshold:
            tp[k], used[int(image)][best] = True, True
    return dets["score"].to_numpy(), tp, sum(len(b) for b in gt.values())


def detection_metrics(
    detections: pd.DataFrame,
    truth: list[np.ndarray],
    classes: tuple[str, ...],
    iou_threshold: float = 0.5,
    operating_threshold: float = 0.5,
) -> tuple[dict[str, float], pd.DataFrame]:
    """mAP@iou (mean AP over the classes with true boxes), AP per class, and precision / recall of the
    detections scoring at least ``operating_threshold``. ``detections`` has columns image (index into
    ``truth``), x_min, y_min, x_max, y_max, class (a name in ``classes``), score; ``truth[i]`` is (K, 5):
    a box and its class index. Returns the metrics and the precision-recall curve points per class."""
    detections = detections.assign(class_index=detections["class"].map({n: i for i, n in enumerate(classes)}))
    metrics: dict[str, float] = {}
    curves, aps = [], []
    tp_at, det_at, gt_all = 0, 0, 0
    for c, name in enumerate(classes):
        scores, tp, n_true = match_detections(detections, truth, c, iou_threshold)
        gt_all += n_true
        kept = scores >= operating_threshold
        tp_at, det_at = tp_at + int(tp[kept].sum()), det_at + int(kept.sum())
        if n_true == 0:
            continue
        hits = np.cumsum(tp)
        recall, precision = hits / n_true, hits / np.arange(1, len(tp) + 1)
        ap = average_precision(recall, precision)
        metrics[f"ap50_{name}" if iou_threshold == 0.5 else f"ap_{name}"] = ap
        aps.append(ap)
        curves.append(pd.DataFrame({"class": name, "recall": recall, "precision": precision, "score": scores}))
    metrics = {
        "map50" if iou_threshold == 0.5 else "map": float(np.mean(aps)) if aps else 0.0,
        "precision": tp_at / det_at if det_at else 0.0,
        "recall": tp_at / gt_all if gt_all else 0.0,
        **metrics,
    }
    curve = (
        pd.concat(curves, ignore_index=True)
        if curves
        else pd.DataFrame(columns=["class", "recall", "precision", "score"])
    )
    return metrics, curve
