"""A tiny YOLOv2-style detector: conv backbone -> S x S grid, A anchors per cell, and its loss and decoding.

Each cell and anchor predicts ``(tx, ty, tw, th, objectness, class logits...)``. As in YOLOv2 the box centre
is ``((col + sigmoid(tx)) / S, (row + sigmoid(ty)) / S)`` (it stays inside its cell) and its size is the
anchor's scaled by ``exp(tw), exp(th)``; all in fractions of the image. A true box is assigned to the cell
holding its centre and to the anchor whose shape fits it best (IoU of centred boxes): that one anchor learns
its box and class, and every other anchor learns "no object".
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from components.metrics.detection import batched_nms


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1))


class TinyYOLO(nn.Module):
    """``widths`` are the channels of the conv blocks; each but the last is followed by a 2x2 max pool, so
    the grid is image_size / 2**(len(widths) - 1) cells a side. ``anchors`` are (A, 2) widths and heights
    as fractions of the image."""

    def __init__(self, num_classes: int, anchors, widths=(8, 16, 32, 64, 128)):
        super().__init__()
        self.num_classes = num_classes
        self.register_buffer("anchors", torch.as_tensor(anchors, dtype=torch.float32).reshape(-1, 2))
        layers, c = [], 3
        for i, w in enumerate(widths):
            layers.append(conv_block(c, w))
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, len(self.anchors) * (5 + num_classes), 1)

    @property
    def stride(self) -> int:
        return 2 ** sum(isinstance(m, nn.MaxPool2d) for m in self.backbone)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> raw predictions (N, S, S, A, 5 + C), rows then columns of the grid."""
        out = self.head(self.backbone(x))
        n, _, s_y, s_x = out.shape
        return out.view(n, len(self.anchors), 5 + self.num_classes, s_y, s_x).permute(0, 3, 4, 1, 2)

    def boxes(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw predictions -> boxes (N, S, S, A, 4) as x_min, y_min, x_max, y_max in fractions of the image."""
        s_y, s_x = raw.shape[1:3]
        rows = torch.arange(s_y, device=raw.device).view(1, s_y, 1, 1)
        cols = torch.arange(s_x, device=raw.device).view(1, 1, s_x, 1)
        cx = (cols + torch.sigmoid(raw[..., 0])) / s_x
        cy = (rows + torch.sigmoid(raw[..., 1])) / s_y
        w = self.anchors[:, 0] * torch.exp(raw[..., 2].clamp(max=4))  # clamp: no overflow from an untrained head
        h = self.anchors[:, 1] * torch.exp(raw[..., 3].clamp(max=4))
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def anchor_shape_iou(wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(K, 2) box sizes x (A, 2) anchors -> (K, A) IoU of the two as if they shared a centre."""
    inter = torch.minimum(wh[:, None], anchors[None]).prod(-1)
    return inter / (wh.prod(-1)[:, None] + anchors.prod(-1)[None] - inter)


def encode_targets(boxes: torch.Tensor, anchors: torch.Tensor, grid: int) -> dict[str, torch.Tensor]:
    """Padded true boxes (N, M, 5) in fractions of the image (x_min, y_min, x_max, y_max, class; class -1 =
    padding) -> per cell and anchor: an object mask, YOLOv2 regression targets and the class index. Two boxes
    landing on the same cell and anchor: the later one wins (rare with a fine enough grid).

    Every slot is written, the padding ones into a spare anchor that is cut off after: no ``nonzero`` (whose
    size the host must read), so the step stays free of host synchronisation and a CUDA graph can capture it."""
    n, m = boxes.shape[:2]
    a = anchors.shape[0]
    real = boxes[..., 4] >= 0  # (N, M)
    centre, wh = (boxes[..., :2] + boxes[..., 2:4]) / 2, (boxes[..., 2:4] - boxes[..., :2]).clamp(min=1e-6)
    col, row = (centre * grid).long().clamp(0, grid - 1).unbind(-1)
    best = anchor_shape_iou(wh.reshape(-1, 2), anchors).argmax(1).view(n, m)
    best = torch.where(real, best, a)  # padding goes to the spare anchor
    sizes = torch.cat([anchors, anchors.new_ones(1, 2)])
    image = torch.arange(n, device=boxes.device)[:, None].expand(n, m)
    at = (image, row, col, best)
    obj = torch.zeros(n, grid, grid, a + 1, dtype=torch.bool, device=boxes.device)
    txy = torch.zeros(n, grid, grid, a + 1, 2, device=boxes.device)
    twh = torch.zeros(n, grid, grid, a + 1, 2, device=boxes.device)
    cls = torch.zeros(n, grid, grid, a + 1, dtype=torch.long, device=boxes.device)
    obj[at] = real
    txy[at] = centre * grid - torch.stack([col, row], -1)
    twh[at] = torch.log(wh / sizes[best])
    cls[at] = boxes[..., 4].long().clamp(min=0)
    return {"obj": obj[..., :a], "txy": txy[:, :, :, :a], "twh": twh[:, :, :, :a], "cls": cls[..., :a]}


def yolo_loss(
    raw: torch.Tensor, targets: dict[str, torch.Tensor], noobj_weight: float = 0.5, box_weight: float = 5.0
) -> torch.Tensor:
    """Sum over the batch, divided by its images: objectness BCE on every anchor (no-object ones weighted by
    ``noobj_weight``), squared error of sigmoid(tx, ty) and (tw, th) on the responsible anchors, and class
    cross-entropy there. Computed on every anchor and weighted by the object mask (rather than gathered by
    it), so no tensor's size depends on the data."""
    obj = targets["obj"].to(raw.dtype)
    objectness = F.binary_cross_entropy_with_logits(raw[..., 4], obj, reduction="none")
    loss = (objectness * obj).sum() + noobj_weight * (objectness * (1 - obj)).sum()
    box = (torch.sigmoid(raw[..., :2]) - targets["txy"]).square().sum(-1) + (
        raw[..., 2:4] - targets["twh"]
    ).square().sum(-1)
    classes = F.cross_entropy(raw[..., 5:].flatten(0, -2), targets["cls"].flatten(), reduction="none")
    loss = loss + box_weight * (box * obj).sum() + (classes.view_as(obj) * obj).sum()
    return loss / raw.shape[0]


@torch.no_grad()
def decode(
    model: TinyYOLO, raw: torch.Tensor, score_threshold: float, iou_threshold: float, max_detections: int
) -> list[torch.Tensor]:
    """Per image, detections (K, 6): x_min, y_min, x_max, y_max (fractions of the image), class, score.
    score = objectness * class probability of the most likely class; then the score filter, per-class NMS
    and the ``max_detections`` best."""
    boxes = model.boxes(raw).flatten(1, 3).float().cpu()
    class_prob, cls = torch.softmax(raw[..., 5:].float(), -1).max(-1)
    scores = (torch.sigmoid(raw[..., 4].float()) * class_prob).flatten(1).cpu()
    cls = cls.flatten(1).cpu()
    out = []
    for b, s, c in zip(boxes, scores, cls):
        keep = s >= score_threshold
        b, s, c = b[keep], s[keep], c[keep]
        kept = batched_nms(b, s, c, iou_threshold)[:max_detections]
        out.append(torch.column_stack([b[kept], c[kept].float(), s[kept]]))
    return out
