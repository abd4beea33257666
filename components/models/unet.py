"""A small U-Net (Ronneberger et al., 2015) for semantic segmentation.

    x ─ block(w0) ──────────────────────────────── cat ─ block(w0) ─ 1x1 conv ─► logits (N, classes, H, W)
          └ pool ─ block(w1) ────────────── cat ─ block(w1)
                      └ pool ─ block(w2) ─ up ┘         (up = ConvTranspose2d, kernel 2, stride 2)

``widths`` lists the channels per level, top to bottom; the last is the bottleneck, so ``len(widths) - 1``
poolings. Each decoder level upsamples with a transpose convolution, concatenates the encoder feature of the
same resolution (the skip connection: the fine "where" that pooling threw away) and convolves the two.
Inputs of any size work: they are padded to a multiple of 2**depth and the logits cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convolutions (same padding), each followed by BatchNorm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"a U-Net needs at least two levels (one pooling); got widths={widths}")
        self.widths = tuple(widths)
        inputs = (in_channels, *widths[:-2])
        self.down = nn.ModuleList(conv_block(c_in, c_out) for c_in, c_out in zip(inputs, widths[:-1]))
        self.bottleneck = conv_block(widths[-2], widths[-1])
        # Decoder, bottom to top: upsample from the level below, then convolve [skip, upsampled] channels.
        pairs = list(zip(widths[:0:-1], widths[-2::-1]))  # (below, this level)
        self.up = nn.ModuleList(nn.ConvTranspose2d(below, level, kernel_size=2, stride=2) for below, level in pairs)
        self.decode = nn.ModuleList(conv_block(2 * level, level) for _, level in pairs)
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        multiple = 2**self.depth
        x = F.pad(x, (0, -w % multiple, 0, -h % multiple))
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.up, self.decode, reversed(skips)):
            x = block(torch.cat([skip, up(x)], dim=1))
        return self.head(x)[..., :h, :w]
