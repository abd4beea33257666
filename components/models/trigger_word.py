"""The course's trigger-word detector (Sequence Models, week 3): spectrogram in, one sigmoid per output step.

    Conv1D (stride 4) -> BN -> ReLU -> dropout -> GRU -> dropout -> BN -> GRU -> dropout -> BN -> dropout
    -> Linear: a logit per step

The strided convolution turns ``frames`` spectrogram columns into ``(frames - kernel) // stride + 1`` output
steps; the GRUs are unidirectional, so a step sees only the audio up to it, as a live detector must. The input
is normalised per mel bin with the training set's mean and standard deviation, kept as buffers so the saved
model carries them.
"""

from __future__ import annotations

import torch
from torch import nn


class TriggerWordDetector(nn.Module):
    def __init__(
        self, mels: int, channels: int = 128, kernel: int = 15, stride: int = 4, hidden: int = 64, dropout: float = 0.2
    ):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.register_buffer("mean", torch.zeros(mels, 1))
        self.register_buffer("std", torch.ones(mels, 1))
        self.conv = nn.Conv1d(mels, channels, kernel, stride)
        self.bn0 = nn.BatchNorm1d(channels)
        self.gru1 = nn.GRU(channels, hidden, batch_first=True)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.gru2 = nn.GRU(hidden, hidden, batch_first=True)
        self.bn2 = nn.BatchNorm1d(hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def output_steps(self, frames: int) -> int:
        return (frames - self.kernel) // self.stride + 1

    def set_normalisation(self, features: torch.Tensor) -> None:
        """Per-mel-bin statistics of training features (N, mels, frames)."""
        self.mean.copy_(features.mean(dim=(0, 2)).unsqueeze(1))
        self.std.copy_(features.std(dim=(0, 2)).clamp(min=1e-3).unsqueeze(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, mels, frames) log-mel -> (B, steps) logits."""
        x = self.drop(torch.relu(self.bn0(self.conv((features - self.mean) / self.std))))  # (B, C, T)
        x, _ = self.gru1(x.transpose(1, 2))
        x = self.bn1(self.drop(x).transpose(1, 2)).transpose(1, 2)  # BN over channels, at every step
        x, _ = self.gru2(x)
        x = self.drop(self.bn2(self.drop(x).transpose(1, 2)).transpose(1, 2))
        return self.out(x).squeeze(-1)

    @torch.no_grad()
    def probabilities(self, features: torch.Tensor) -> torch.Tensor:
        self.eval()
        return torch.sigmoid(self(features))


class TwoClassLogits(nn.Module):
    """(B, 2, steps) logits [0, z]: softmax of them is [1 - sigmoid(z), sigmoid(z)], so cross-entropy on them is
    the per-step binary cross-entropy, and ``training.fit``'s argmax accuracy counts correct steps."""

    def __init__(self, detector: TriggerWordDetector):
        super().__init__()
        self.detector = detector

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = self.detector(features)
        return torch.stack([torch.zeros_like(z), z], dim=1)
