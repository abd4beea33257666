"""A small CNN with dropout after every block, for Monte Carlo dropout (Gal & Ghahramani, 2016).

No BatchNorm: at MC time the dropout layers stay stochastic while everything else is in eval mode, and
dropout is then the only source of randomness. ``components/evaluation/uncertainty.py`` runs the T passes.
"""

from __future__ import annotations

from torch import nn


class MCDropoutCNN(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        width: int = 16,
        hidden: int = 128,
        conv_dropout: float = 0.1,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(conv_dropout),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(conv_dropout),
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(7),  # identity for 28x28 inputs; other sizes land on the same head
            nn.Flatten(),
            nn.Linear(2 * width * 49, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.head(self.features(x))


class GalCNN(nn.Module):
    """The Bayesian CNN of Gal, Islam & Ghahramani (2017), "Deep Bayesian Active Learning with Image Data":
    conv 32 4x4, conv 32 4x4, max-pool, dropout 0.25, dense 128, dropout 0.5, dense. Pair it with a weight
    prior that shrinks as labels grow (``TorchImageClassifier(prior_l2=...)``, their c / N)."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        width: int = 32,
        hidden: int = 128,
        conv_dropout: float = 0.25,
        dropout: float = 0.5,
        image_size: int = 28,
    ):
        super().__init__()
        side = (image_size - 6) // 2  # two valid 4x4 convolutions, then a 2x2 pool
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 4),
            nn.ReLU(),
            nn.Conv2d(width, width, 4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(conv_dropout),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(width * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.head(self.features(x))
