"""A small custom CNN: conv-BatchNorm-ReLU blocks, global pooling, dropout, linear head."""

from __future__ import annotations

from torch import nn


def conv_block(c_in: int, c_out: int, batchnorm: bool = True) -> nn.Sequential:
    if not batchnorm:  # the study's "BatchNorm off": the convolution keeps its bias
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),  # BatchNorm makes the bias redundant
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class MaskCNN(nn.Module):
    def __init__(
        self,
        num_classes: int = 2,
        in_channels: int = 3,
        width: int = 16,
        depth: int = 4,
        dropout: float = 0.3,
        batchnorm: bool = True,
    ):
        super().__init__()
        channels = [in_channels] + [width * 2**i for i in range(depth)]
        self.features = nn.Sequential(*(conv_block(a, b, batchnorm) for a, b in zip(channels, channels[1:])))
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels[-1], num_classes)
        )

    def forward(self, x):
        return self.head(self.features(x))
