"""FaceNet (Schroff et al., 2015), small: an Inception-style net maps a face to a 128-d point on the unit sphere,
trained with the triplet loss so that one person's faces lie closer together than any two people's.

    image (B, C, H, W) in [0, 1]
      └ standardise each image (zero mean, unit variance: brightness and contrast are not identity)
      └ stem: conv 3x3 /2 ─ BN ─ ReLU ─ conv 3x3 ─ BN ─ ReLU ─ max-pool /2
      └ inception ─ max-pool /2 ─ inception ─ max-pool /2 ─ inception   (one block per entry of ``blocks``)
      └ global average pool ─ linear ─► 128 ─ L2-normalise ─► embedding (B, 128), ||e|| = 1

An inception block looks at the same input through four parallel branches and concatenates what they see:

    x ─┬─ 1x1 ───────────────┐
       ├─ 1x1 ─ 3x3 ─────────┤   (the 1x1 before 3x3 and 5x5 "reduces" the channels: cheap wide kernels)
       ├─ 1x1 ─ 5x5 ─────────┼─ concat (channels) ─► y
       └─ 3x3 max-pool ─ 1x1 ┘

The triplet loss on squared distances ``d``: for an anchor a, a positive p (same person) and a negative n,
``max(d(a, p) - d(a, n) + margin, 0)``. Triplets are mined online, inside each batch of P people x K images:
every (anchor, positive) pair of the batch takes the SEMI-HARD negative, the closest one that is still farther
than the positive (d(a, p) < d(a, n)); when there is none (every negative is closer than the positive), the
farthest negative. Hardest negatives early in training collapse the embedding to a point (the paper's
observation); semi-hard ones keep the loss informative without that.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Inception(nn.Module):
    """Four parallel branches over the same input, concatenated: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | pool -> 1x1.

    ``widths = (c1, r3, c3, r5, c5, cp)``: the 1x1 branch's channels, the 3x3 branch's reduction and output,
    the 5x5 branch's reduction and output, and the pool branch's projection; the output has c1 + c3 + c5 + cp.
    """

    def __init__(self, c_in: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        c1, r3, c3, r5, c5, cp = widths
        self.branch1 = conv_bn(c_in, c1, 1)
        self.branch3 = nn.Sequential(conv_bn(c_in, r3, 1), conv_bn(r3, c3, 3))
        self.branch5 = nn.Sequential(conv_bn(c_in, r5, 1), conv_bn(r5, c5, 5))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv_bn(c_in, cp, 1))
        self.out_channels = c1 + c3 + c5 + cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


DEFAULT_BLOCKS = (
    (16, 16, 24, 4, 8, 8),  # 56 channels
    (24, 24, 40, 8, 16, 16),  # 96
    (32, 32, 48, 8, 16, 16),  # 112
)


class FaceNet(nn.Module):
    def __init__(
        self,
        in_channels: int = 3,
        stem: tuple[int, int] = (16, 32),
        blocks: tuple[tuple[int, ...], ...] = DEFAULT_BLOCKS,
        embedding_dim: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.stem = nn.Sequential(
            conv_bn(in_channels, stem[0], 3, stride=2), conv_bn(stem[0], stem[1], 3), nn.MaxPool2d(2)
        )
        layers, channels = [], stem[1]
        for i, widths in enumerate(blocks):
            if i:
                layers.append(nn.MaxPool2d(2))
            block = Inception(channels, tuple(widths))
            layers.append(block)
            channels = block.out_channels
        self.inception = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, embedding_dim)
        self.embedding_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True).clamp(min=1e-3)
        x = self.inception(self.stem((x - mean) / std))
        x = self.dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return F.normalize(self.head(x).float(), dim=1)


def squared_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, B) squared Euclidean distances between the rows, clamped at 0 (rounding can dip below)."""
    dot = embeddings @ embeddings.T
    norms = dot.diagonal()
    return (norms[:, None] - 2 * dot + norms[None, :]).clamp(min=0)


def semi_hard_negatives(distances: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every (anchor, positive) pair of the batch: the anchor, positive and mined negative indices (each (T,)).

    The negative is the closest one farther from the anchor than the positive; where none is, the farthest."""
    same = labels[:, None] == labels[None, :]
    anchor, positive = torch.nonzero(
        same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device), as_tuple=True
    )
    d_ap = distances[anchor, positive][:, None]  # (T, 1)
    d_an = distances[anchor]  # (T, B)
    negative = ~same[anchor]  # (T, B)
    inf = torch.tensor(torch.inf, device=distances.device, dtype=distances.dtype)
    beyond = negative & (d_an > d_ap)
    semi_hard = torch.where(beyond, d_an, inf).argmin(dim=1)
    farthest = torch.where(negative, d_an, -inf).argmax(dim=1)
    return anchor, positive, torch.where(beyond.any(dim=1), semi_hard, farthest)


def triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The mean triplet loss over every (anchor, positive) pair of the batch, each with its semi-hard negative,
    and what the mining found: the share of triplets with a positive loss ("active")."""
    d = squared_distances(embeddings)
    a, p, n = semi_hard_negatives(d, labels)
    if len(a) == 0:
        raise ValueError("triplet loss: no two images of one person in the batch")
    losses = (d[a, p] - d[a, n] + margin).clamp(min=0)
    return losses.mean(), {"active": (losses > 0).float().mean()}
