"""The happy-house model of the course: one 7x7 conv (padded), BatchNorm, ReLU, max-pool, a linear head.

The course ends in Dense(1, sigmoid); two logits with softmax cross-entropy are the same model for two classes
and fit the shared classifier (``predict_proba`` with one column per class).
"""

from __future__ import annotations

from torch import nn


class HappyCNN(nn.Module):
    def __init__(self, num_classes: int = 2, in_channels: int = 3, width: int = 32, image_size: int = 64):
        super().__init__()
        self.features = nn.Sequential(
            nn.ZeroPad2d(3),
            nn.Conv2d(in_channels, width, 7),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width * (image_size // 2) ** 2, num_classes))

    def forward(self, x):
        return self.head(self.features(x))
