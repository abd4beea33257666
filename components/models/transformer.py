"""An encoder-decoder Transformer from scratch ("Attention Is All You Need"), nanoGPT style.

Only Linear, LayerNorm, Embedding, Dropout and softmax: the attention, the masks and the positional encoding
are written out here (tests check ``MultiHeadAttention`` against ``torch.nn.MultiheadAttention``).

Masks follow torch's convention: a boolean ``True`` means "may NOT attend". Shapes: ``B`` batch, ``S`` source
length, ``T`` target length, ``D`` model width, ``H`` heads.

The layers are pre-norm (LayerNorm before each sub-layer, one final LayerNorm), not the paper's post-norm:
pre-norm trains stably without a long learning-rate warm-up, which a two-minute CPU run cannot afford.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def scaled_dot_product_attention(q, k, v, blocked=None, dropout: float = 0.0, training: bool = False):
    """softmax(q k^T / sqrt(d_k)) v for q (..., T, d), k and v (..., S, d); ``blocked`` broadcasts to (..., T, S).
    Returns the output (..., T, d) and the attention weights (..., T, S)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))
    weights = scores.softmax(dim=-1)
    return F.dropout(weights, dropout, training) @ v, weights


def causal_mask(size: int, device=None) -> torch.Tensor:
    """(size, size), True above the diagonal: position t may not look ahead at t+1, t+2, ..."""
    return torch.ones(size, size, dtype=torch.bool, device=device).triu(1)


def padding_mask(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(B, 1, 1, S): True at padded keys, shaped to broadcast over heads and queries."""
    return (tokens == pad_id)[:, None, None, :]


class MultiHeadAttention(nn.Module):
    """H heads of scaled dot-product attention over learned projections of width D / H, concatenated and
    projected back to D. Returns the output and the per-head weights (B, H, T, S)."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d_model, d_model) for _ in range(4))

    def _split(self, x):  # (B, L, D) -> (B, H, L, D/H)
        b, length, d = x.shape
        return x.view(b, length, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, query, key, value, blocked=None):
        q, k, v = self._split(self.q_proj(query)), self._split(self.k_proj(key)), self._split(self.v_proj(value))
        out, weights = scaled_dot_product_attention(q, k, v, blocked, self.dropout, self.training)
        out = out.transpose(1, 2).reshape(query.shape)  # heads side by side again: (B, T, D)
        return self.out_proj(out), weights


class PositionalEncoding(nn.Module):
    """Adds PE(pos, 2i) = sin(pos / 10000^(2i/D)), PE(pos, 2i+1) = cos(pos / 10000^(2i/D)) to (B, L, D)."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]
        rate = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * rate)
        pe[:, 1::2] = torch.cos(pos * rate[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)  # a formula, not a weight: not in the state dict

    def forward(self, x):
        if x.size(1) > self.pe.size(0):
            raise ValueError(f"sequence of {x.size(1)} tokens is longer than max_len {self.pe.size(0)}")
        return x + self.pe[: x.size(1)]


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model), nn.Dropout(dropout))


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, heads, dropout)
        self.ff, self.drop = FeedForward(d_model, d_ff, dropout), nn.Dropout(dropout)

    def forward(self, x, src_blocked):
        h = self.norm1(x)
        x = x + self.drop(self.attn(h, h, h, src_blocked)[0])
        return x + self.ff(self.norm2(x))


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.self_attn = MultiHeadAttention(d_model, heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, heads, dropout)
        self.ff, self.drop = FeedForward(d_model, d_ff, dropout), nn.Dropout(dropout)

    def forward(self, x, memory, tgt_blocked, src_blocked):
        h = self.norm1(x)
        x = x + self.drop(self.self_attn(h, h, h, tgt_blocked)[0])
        attended, cross_weights = self.cross_attn(self.norm2(x), memory, memory, src_blocked)
        x = x + self.drop(attended)
        return x + self.ff(self.norm3(x)), cross_weights


class Transformer(nn.Module):
    """Source token ids (B, S) and shifted target ids (B, T) -> next-token logits (B, T, target vocabulary)."""

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        d_model: int = 64,
        heads: int = 4,
        encoder_layers: int = 2,
        decoder_layers: int = 2,
        d_ff: int = 256,
        dropout: float = 0.1,
        max_len: int = 128,
        pad_id: int = 0,
    ):
        super().__init__()
        self.d_model, self.pad_id = d_model, pad_id
        self.src_embed = nn.Embedding(src_vocab, d_model, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model, padding_idx=pad_id)
        self.pos = PositionalEncoding(d_model, max_len)
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, heads, d_ff, dropout) for _ in range(encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(d_model, heads, d_ff, dropout) for _ in range(decoder_layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, tgt_vocab)

    def embed(self, table: nn.Embedding, tokens):
        # The paper scales embeddings by sqrt(D) so they are not drowned by the unit-sized positional encoding.
        return self.drop(self.pos(table(tokens) * math.sqrt(self.d_model)))

    def encode(self, src):
        src_blocked = padding_mask(src, self.pad_id)
        x = self.embed(self.src_embed, src)
        for layer in self.encoder:
            x = layer(x, src_blocked)
        return self.enc_norm(x), src_blocked

    def decode(self, tgt_in, memory, src_blocked):
        """Logits (B, T, V) and each decoder layer's cross-attention weights (B, H, T, S)."""
        # A query may see neither future positions nor padding (padding sits only after <eos>, so the causal
        # mask already hides it from every real position; it is added for the padded queries' sake).
        tgt_blocked = causal_mask(tgt_in.size(1), tgt_in.device) | padding_mask(tgt_in, self.pad_id)
        x = self.embed(self.tgt_embed, tgt_in)
        cross = []
        for layer in self.decoder:
            x, weights = layer(x, memory, tgt_blocked, src_blocked)
            cross.append(weights)
        return self.head(self.dec_norm(x)), cross

    def forward(self, src, tgt_in):
        memory, src_blocked = self.encode(src)
        return self.decode(tgt_in, memory, src_blocked)[0]

    @torch.no_grad()
    def greedy_decode(self, src, bos_id: int, eos_id: int, max_len: int):
        """Most likely next token, one step at a time, until every row has produced <eos> (or max_len).
        Returns ids (B, <= max_len) without <bos>; after a row's <eos> the rest is padding."""
        memory, src_blocked = self.encode(src)
        out = torch.full((src.size(0), 1), bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            logits, _ = self.decode(out, memory, src_blocked)
            step = logits[:, -1].argmax(-1).masked_fill(done, self.pad_id)
            out = torch.cat([out, step[:, None]], dim=1)
            done |= step == eos_id
            if done.all():
                break
        return out[:, 1:]
