"""ResNet-50 from identity and convolutional blocks (He et al., 2016), written out to read top to bottom.

    identity block:        x -> 1x1 -> 3x3 -> 1x1 (+ x)            shapes unchanged
    convolutional block:   x -> 1x1 -> 3x3/s -> 1x1 (+ 1x1/s(x))   a projection on the shortcut changes shape

    stem:    7x7/2 conv, BN, ReLU, 3x3/2 max-pool                            64 channels
    stage 2: conv block [64, 64, 256] stride 1,   2 identity blocks
    stage 3: conv block [128, 128, 512] stride 2, 3 identity blocks
    stage 4: conv block [256, 256, 1024] stride 2, 5 identity blocks
    stage 5: conv block [512, 512, 2048] stride 2, 2 identity blocks
    head:    global average pool, linear

Convolutions have no bias (BatchNorm follows each) and the stride sits on the 3x3 conv (the "v1.5" variant
torchvision uses), so at 1000 classes the parameter count is torchvision's: 25,557,032.
The course's Keras version puts a bias on every conv and the stride on the first 1x1; only the count differs.
"""

from __future__ import annotations

from torch import nn

STAGES = (  # (filters of the three convs, blocks, stride of the first block)
    ((64, 64, 256), 3, 1),
    ((128, 128, 512), 4, 2),
    ((256, 256, 1024), 6, 2),
    ((512, 512, 2048), 3, 2),
)


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out)]


class Bottleneck(nn.Module):
    """The main path of both blocks: 1x1 reduce, 3x3 (strided in a conv block), 1x1 expand."""

    def __init__(self, c_in: int, filters: tuple[int, int, int], stride: int):
        super().__init__()
        f1, f2, f3 = filters
        self.main = nn.Sequential(
            *conv_bn(c_in, f1, 1),
            nn.ReLU(inplace=True),
            *conv_bn(f1, f2, 3, stride),
            nn.ReLU(inplace=True),
            *conv_bn(f2, f3, 1),
        )
        self.relu = nn.ReLU(inplace=True)


class IdentityBlock(Bottleneck):
    """Input and output have the same shape, so the shortcut is the input itself."""

    def __init__(self, channels: int, filters: tuple[int, int, int]):
        super().__init__(channels, filters, stride=1)

    def forward(self, x):
        return self.relu(self.main(x) + x)


class ConvBlock(Bottleneck):
    """The shape changes (channels, and resolution when stride > 1): the shortcut is a strided 1x1 conv + BN."""

    def __init__(self, c_in: int, filters: tuple[int, int, int], stride: int):
        super().__init__(c_in, filters, stride)
        self.shortcut = nn.Sequential(*conv_bn(c_in, filters[2], 1, stride))

    def forward(self, x):
        return self.relu(self.main(x) + self.shortcut(x))


def stage(c_in: int, filters: tuple[int, int, int], blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        ConvBlock(c_in, filters, stride), *(IdentityBlock(filters[2], filters) for _ in range(blocks - 1))
    )


class ResNet50(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False):
        """``zero_init_residual``: start the last BatchNorm of every residual branch at zero, so each block
        begins as the identity (Goyal et al., 2017); it helps a from-scratch ResNet on a small dataset."""
        super().__init__()
        self.stem = nn.Sequential(
            *conv_bn(in_channels, 64, 7, stride=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)
        )
        stages, c_in = [], 64
        for filters, blocks, stride in STAGES:
            stages.append(stage(c_in, filters, blocks, stride))
            c_in = filters[2]
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))
        if zero_init_residual:
            for block in self.modules():
                if isinstance(block, Bottleneck):
                    nn.init.zeros_(block.main[-1].weight)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))
