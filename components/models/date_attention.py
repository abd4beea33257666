"""Seq2seq with attention for dates (the Coursera NMT assignment): characters in, ISO characters out.

    x (B, Tx) char ids --BiLSTM--> a (B, Tx, 2*enc)                       one pass over the input
    for each of the Ty output characters:
        e_t = v . tanh(W [s_{t-1}; a_i])     for every input position i   additive attention
        alpha_t = softmax(e_t) over the real (non-padding) positions
        context_t = sum_i alpha_t,i a_i
        s_t = LSTMCell(context_t, s_{t-1});  logits_t = Linear(s_t)

The decoder does not read its own previous outputs (as in the assignment): the output length is fixed and
the attention alone says where to look, so there is no teacher forcing and greedy decoding is exact.
"""

from __future__ import annotations

import torch
from torch import nn

PAD = 0  # input id 0 is padding; the encoder skips it and the attention gives it no weight


class AdditiveAttention(nn.Module):
    def __init__(self, state: int, keys: int, hidden: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(state + keys, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, s: torch.Tensor, a: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """s (B, S) decoder state, a (B, Tx, K) encoder states, mask (B, Tx) True at real characters
        -> context (B, K), weights (B, Tx) that sum to 1 over the real characters."""
        energies = self.score(torch.cat([s.unsqueeze(1).expand(-1, a.shape[1], -1), a], dim=-1)).squeeze(-1)
        alpha = energies.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        return torch.bmm(alpha.unsqueeze(1), a).squeeze(1), alpha


class DateTranslator(nn.Module):
    def __init__(
        self,
        input_vocab: int,
        output_vocab: int,
        output_length: int = 10,
        embedding: int = 16,
        encoder: int = 32,
        decoder: int = 64,
        attention: int = 16,
    ):
        super().__init__()
        self.output_length = output_length
        self.embed = nn.Embedding(input_vocab, embedding, padding_idx=PAD)
        # a BiLSTM as two LSTMs, so the right-to-left one can read each row's own characters (below)
        self.encoder = nn.LSTM(embedding, encoder, batch_first=True)
        self.encoder_reverse = nn.LSTM(embedding, encoder, batch_first=True)
        self.attention = AdditiveAttention(decoder, 2 * encoder, attention)
        self.decoder = nn.LSTMCell(2 * encoder, decoder)
        self.out = nn.Linear(decoder, output_vocab)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = x != PAD
        mask[:, 0] = True  # an empty input is read as one padding step, so attention has somewhere to look
        # The right-to-left LSTM reads each row with its characters reversed in place and its padding left at
        # the end, so it starts at the row's last character, not at the padding. That is what packing does, but
        # with the indices on the device: no lengths read on the host, so a CUDA graph can capture the step.
        steps = torch.arange(x.shape[1], device=x.device)
        lengths = mask.sum(1, keepdim=True)
        flip = torch.where(steps < lengths, lengths - 1 - steps, steps).unsqueeze(-1)  # its own inverse
        e = self.embed(x)
        forward = self.encoder(e)[0]
        backward = self.encoder_reverse(e.gather(1, flip.expand_as(e)))[0]
        a = torch.cat([forward, backward.gather(1, flip.expand_as(backward))], dim=-1)
        return a * mask.unsqueeze(-1).to(a.dtype), mask  # zero at the padding, as packed sequences are

    def translate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, Tx) -> logits (B, Ty, V) and attention weights (B, Ty, Tx)."""
        a, mask = self.encode(x)
        s = a.new_zeros(x.shape[0], self.decoder.hidden_size)
        c = torch.zeros_like(s)
        logits, weights = [], []
        for _ in range(self.output_length):
            context, alpha = self.attention(s, a, mask)
            s, c = self.decoder(context, (s, c))
            logits.append(self.out(s))
            weights.append(alpha)
        return torch.stack(logits, 1), torch.stack(weights, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, V, Ty): the layout ``cross_entropy`` takes for a sequence of class targets (B, Ty)."""
        return self.translate(x)[0].transpose(1, 2)
