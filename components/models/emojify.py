"""Emojify's two sentence classifiers over frozen GloVe embeddings (Coursera Sequence Models, week 2).

Both read a batch of token ids, right-padded with 0, whose embedding row 0 is all zeros.
- ``AveragedEmbeddingClassifier``: the course's baseline, softmax over the mean of the words' vectors. Word
  order is lost, so "not happy" averages close to "happy".
- ``EmojifyLSTM``: the course's Emojify-V2, two stacked LSTM layers with dropout, the last layer's final
  hidden state (at each sentence's own length) into a linear layer.
"""

from __future__ import annotations

import torch
from torch import nn


def frozen_embedding(vectors: torch.Tensor) -> nn.Embedding:
    return nn.Embedding.from_pretrained(vectors.float(), freeze=True, padding_idx=0)


class AveragedEmbeddingClassifier(nn.Module):
    def __init__(self, vectors: torch.Tensor, classes: int):
        super().__init__()
        self.embedding = frozen_embedding(vectors)
        self.out = nn.Linear(vectors.shape[1], classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != 0).unsqueeze(-1).to(self.out.weight.dtype)
        mean = (self.embedding(tokens) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.out(mean)


class EmojifyLSTM(nn.Module):
    def __init__(self, vectors: torch.Tensor, classes: int, hidden: int = 128, layers: int = 2, dropout: float = 0.5):
        super().__init__()
        self.embedding = frozen_embedding(vectors)
        self.lstm = nn.LSTM(
            vectors.shape[1], hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # The top layer's output after each sentence's last word: the LSTM reads left to right, so the padding
        # after it cannot change it. Gathering it on the device (rather than packing, whose lengths must be on
        # the host) keeps the step free of host synchronisation, so a CUDA graph can capture it.
        lengths = (tokens != 0).sum(1).clamp(min=1)
        if not tokens.is_cuda:  # on the CPU reading the width is free and the LSTM skips the padding columns
            tokens = tokens[:, : int(lengths.max())]
        last = (lengths - 1).view(-1, 1, 1)
        out, _ = self.lstm(self.embedding(tokens))
        return self.out(self.dropout(out.gather(1, last.expand(-1, 1, out.shape[-1])).squeeze(1)))


def build_emoji_model(
    arch: str, vectors: torch.Tensor, classes: int, hidden: int = 128, layers: int = 2, dropout: float = 0.5
) -> nn.Module:
    if arch == "average":
        return AveragedEmbeddingClassifier(vectors, classes)
    if arch == "lstm":
        return EmojifyLSTM(vectors, classes, hidden, layers, dropout)
    raise ValueError(f"unknown emojify model {arch!r}; expected 'average' or 'lstm'")


class EmojiNetBuilder:
    """Builds one of the two nets for a class count: the network of a ``TorchTensorClassifier``
    (components/training/estimators.py), so active learning's rounds can clone and refit it.

    Equal when the arch, sizes and embedding vectors are: scikit-learn's ``clone`` deep-copies it, and a clone
    must compare equal to what it was cloned from.
    """

    def __init__(self, arch: str, vectors: torch.Tensor, hidden: int = 128, layers: int = 2, dropout: float = 0.5):
        self.arch, self.vectors, self.hidden, self.layers, self.dropout = arch, vectors, hidden, layers, dropout

    def __call__(self, classes: int) -> nn.Module:
        return build_emoji_model(self.arch, self.vectors, classes, self.hidden, self.layers, self.dropout)

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, EmojiNetBuilder)
            and (self.arch, self.hidden, self.layers, self.dropout)
            == (other.arch, other.hidden, other.layers, other.dropout)
            and torch.equal(self.vectors, other.vectors)
        )

    __hash__ = None

    def __repr__(self) -> str:
        return f"EmojiNetBuilder({self.arch!r}, vectors={tuple(self.vectors.shape)}, hidden={self.hidden})"
