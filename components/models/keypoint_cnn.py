"""A small CNN that predicts the 30 keypoint coordinates, the masked loss that lets partly labelled faces
train, and the horizontal flip that mirrors the keypoints with the image.

The net sees pixels scaled to [0, 1] and predicts coordinates scaled to [-1, 1] (``(x - 48) / 48``), as in
Daniel Nouri's keypoints tutorial: targets of order one suit a plain linear output layer.
"""

from __future__ import annotations

import torch
from torch import nn

HALF = 48.0  # half the image size in pixels


def to_unit(coords: torch.Tensor) -> torch.Tensor:
    return (coords - HALF) / HALF


def to_pixels(unit: torch.Tensor) -> torch.Tensor:
    return unit * HALF + HALF


class KeypointCNN(nn.Module):
    """Conv blocks that downsample, dilated conv blocks that see the whole face, one heatmap per keypoint, and
    each heatmap's softmax-weighted mean position ("soft-argmax") as that keypoint's (x, y).

    Regressing coordinates from a flattened feature map with a dense layer (Nouri's nets) needs thousands of
    faces and epochs to learn where things are; a heatmap is computed the same way at every position, so the
    net learns what an eye looks like once and the soft-argmax turns it into a sub-pixel coordinate, still
    trained end to end on coordinates. Dilations 1, 2, 4 ... let the last features span the face, which is what
    tells a left eye from a right one. Dropout2d drops whole channels (neighbouring pixels are too alike for
    element-wise dropout to regularize).
    """

    def __init__(
        self,
        outputs: int = 30,
        widths: tuple[int, ...] = (16, 32),
        context: tuple[int, ...] = (48, 48, 48),
        dropout: tuple[float, float] = (0.1, 0.1),
        shrink: int = 2,
        image_size: int = 96,
    ):
        super().__init__()
        # Averaging 2x2 pixels first makes every convolution 4x cheaper (minutes, not an hour, on a CPU); the
        # soft-argmax recovers sub-pixel positions from the smooth input.
        layers, channels = [nn.AvgPool2d(shrink) if shrink > 1 else nn.Identity()], 1
        for width in widths:
            layers += [*conv_block(channels, width), nn.MaxPool2d(2), nn.Dropout2d(dropout[0])]
            channels = width
        for level, width in enumerate(context):
            layers += [*conv_block(channels, width, dilation=2**level), nn.Dropout2d(dropout[1])]
            channels = width
        self.features = nn.Sequential(*layers)
        self.heatmaps = nn.Conv2d(channels, outputs // 2, 1)
        cells = image_size // shrink // 2 ** len(widths)
        step = image_size / cells  # pixels per heatmap cell; cell i's centre is at step * i + (step - 1) / 2
        self.register_buffer("centres", to_unit(torch.arange(cells) * step + (step - 1) / 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 1, 96, 96) in [0, 1] -> (N, 2K) in [-1, 1]
        logits = self.heatmaps(self.features(x))  # (N, K, H, W)
        n, k, h, w = logits.shape
        p = logits.flatten(2).softmax(-1).view(n, k, h, w)
        x_mean = (p.sum(2) * self.centres).sum(-1)  # marginal over columns, weighted by column centres
        y_mean = (p.sum(3) * self.centres).sum(-1)
        return torch.stack([x_mean, y_mean], -1).flatten(1)  # x0, y0, x1, y1, ... as in the CSV


def conv_block(channels: int, width: int, dilation: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
    ]


def masked_mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the coordinates present in ``target`` (NaN = missing), so a face with only
    four keypoints still teaches those four and says nothing about the others."""
    present = ~torch.isnan(target)
    diff = torch.where(present, predicted - torch.nan_to_num(target), torch.zeros_like(predicted))
    return (diff**2).sum() / present.sum().clamp(min=1)


def flip_horizontally(
    images: torch.Tensor, coords: torch.Tensor, mirror: torch.Tensor, width: int = 96
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror images (N, 1, H, W) and their pixel coordinates (N, 30): x -> (width - 1) - x (pixel centres at
    integers), and each keypoint takes its mirror partner's column (``mirror[k]``: the left eye seen in a
    mirror is where a right eye is), so the labels still name the right points."""
    xy = coords.reshape(len(coords), -1, 2)[:, mirror]
    xy = torch.stack([(width - 1) - xy[..., 0], xy[..., 1]], -1)
    return images.flip(-1), xy.reshape(len(coords), -1)
