"""A fully connected classifier on flattened pixels: the seed's 784-128-128-128-10 ReLU net.

The softmax of the seed's output layer lives in the loss (cross-entropy on logits) and in
``predict_proba``; the network returns logits.
"""

from __future__ import annotations

from torch import nn


class MLP(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        in_features: int = 784,
        hidden: tuple[int, ...] = (128, 128, 128),
        dropout: float = 0.0,
    ):
        super().__init__()
        del in_channels  # flattened: in_features already counts every channel's pixels
        widths = [in_features, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
