"""A Transformer encoder over token ids with one output per token, built from ``models.transformer``'s layers.

- ``PointerReader`` (extractive QA): tokens ``question <sep> story``, one score per token; only story tokens may
  be pointed at, so the answer is always a word of the story. A learned "sentences ago" embedding tells each
  story token how recent its sentence is (memory networks' temporal encoding): bAbI answers hinge on the latest
  fact about someone, and sinusoidal positions alone make the encoder learn recency slowly.
- ``TokenTagger`` (token classification, e.g. BIO tags of named entities): one tag score vector per token from
  the word id and a word-shape id (capitalised, digits, an @, punctuation...), so that a word the vocabulary
  never saw (a new name, a new company) is still tagged by its shape and its context. A convolution over
  neighbouring tokens (width ``context``) feeds the encoder: "the word after Name:" is then a feature at the
  first step, where sinusoidal positions alone make attention learn such local patterns slowly. Word dropout
  (training only) replaces a share of known words by ``unk_id``: otherwise every unknown word in training is
  an entity (names, e-mails are rarely seen twice), and any unseen word at test time is taken for one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from components.models.transformer import EncoderLayer, PositionalEncoding, padding_mask

MASKED = -1e4  # not -inf: a fully masked row must stay finite, and bf16 holds it


class TokenEncoder(nn.Module):
    """Token ids (B, L) plus optional extra embeddings (B, L, D) -> contextual vectors (B, L, D)."""

    trim: bool | None = None  # drop all-padding trailing columns before the layers; None: on the CPU only

    def __init__(
        self,
        vocab: int,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        d_ff: int = 128,
        dropout: float = 0.1,
        max_len: int = 512,
        pad_id: int = 0,
    ):
        super().__init__()
        self.d_model, self.pad_id = d_model, pad_id
        self.embed = nn.Embedding(vocab, d_model, padding_idx=pad_id)
        self.pos = PositionalEncoding(d_model, max_len)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, heads, d_ff, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens, extra=None):
        # Trailing columns that are padding in every row change nothing but cost time: on the CPU they are
        # dropped and padded back with zeros. On a GPU they are computed and zeroed instead: reading the width
        # on the host would synchronise every step and keep a CUDA graph from capturing it.
        width = tokens.size(1)
        if (not tokens.is_cuda if self.trim is None else self.trim) and tokens.numel():
            used = int((tokens != self.pad_id).any(0).nonzero().max()) + 1
            tokens = tokens[:, :used]
            extra = None if extra is None else extra[:, :used]
        x = self.pos(self.embed(tokens) * math.sqrt(self.d_model))
        if extra is not None:
            x = x + extra
        x, blocked = self.drop(x), padding_mask(tokens, self.pad_id)
        for layer in self.layers:
            x = layer(x, blocked)
        x = self.norm(x)
        if tokens.size(1) < width:
            return nn.functional.pad(x, (0, 0, 0, width - tokens.size(1)))
        trailing = ~(tokens != self.pad_id).any(0).flip(0).cummax(0).values.flip(0)  # (L,): padding to the end
        return x.masked_fill(trailing[None, :, None], 0.0)


class PointerReader(nn.Module):
    """``x`` (B, 3, L): row 0 token ids ``question <sep> story <pad>...``, row 1 each token's sentences-ago
    count (0 = the latest sentence; -1 = not a story token), row 2 the question-match code 0-3 (1: the word
    occurs in the question, +2: its sentence holds such a word; DrQA's exact-match feature). Returns pointer logits (B, L), ``MASKED`` off the
    story, so ``cross_entropy(logits, answer position)`` trains it."""

    def __init__(
        self,
        vocab: int,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        d_ff: int = 128,
        dropout: float = 0.1,
        max_len: int = 512,
        max_sentences: int = 64,
        pad_id: int = 0,
    ):
        super().__init__()
        self.encoder = TokenEncoder(vocab, d_model, heads, layers, d_ff, dropout, max_len, pad_id)
        # index 0: question and padding; 1 + k: a story token k sentences before the question
        self.recency = nn.Embedding(max_sentences + 1, d_model)
        self.match = nn.Embedding(4, d_model)
        self.max_sentences = max_sentences
        self.score = nn.Linear(d_model, 1)

    def forward(self, x):
        tokens, ago, match = x[:, 0], x[:, 1], x[:, 2]
        story = ago >= 0
        extra = self.recency((ago + 1).clamp(0, self.max_sentences)) + self.match(match)
        logits = self.score(self.encoder(tokens, extra)).squeeze(-1)
        return logits.masked_fill(~story, MASKED)


class TokenTagger(nn.Module):
    """``x`` (B, 2, L): row 0 word ids (``pad_id`` past the end), row 1 word-shape ids. Returns tag logits
    (B, tags, L), the layout ``cross_entropy(logits, tags)`` takes for targets (B, L) (padding -100)."""

    def __init__(
        self,
        vocab: int,
        shapes: int,
        tags: int,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        d_ff: int = 128,
        dropout: float = 0.1,
        max_len: int = 512,
        pad_id: int = 0,
        context: int = 5,
        word_dropout: float = 0.0,
        unk_id: int = 1,
    ):
        super().__init__()
        self.word_dropout, self.unk_id, self.pad_id = word_dropout, unk_id, pad_id
        self.encoder = TokenEncoder(vocab, d_model, heads, layers, d_ff, dropout, max_len, pad_id)
        self.shape = nn.Embedding(shapes, d_model, padding_idx=0)
        self.local = nn.Conv1d(d_model, d_model, context, padding=context // 2) if context > 1 else None
        self.tag = nn.Linear(d_model, tags)

    def forward(self, x):
        tokens = x[:, 0]
        if self.training and self.word_dropout > 0:
            known = (tokens != self.pad_id) & (tokens != self.unk_id)
            dropped = known & (torch.rand(tokens.shape, device=tokens.device) < self.word_dropout)
            tokens = tokens.masked_fill(dropped, self.unk_id)
        extra = self.shape(x[:, 1])
        if self.local is not None:  # the neighbours' words and shapes, mixed into each token's input
            near = self.encoder.embed(tokens) + extra
            extra = extra + self.local(near.transpose(1, 2)).transpose(1, 2)
        return self.tag(self.encoder(tokens, extra)).transpose(1, 2)
