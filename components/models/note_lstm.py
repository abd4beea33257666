"""A next-token language model over note tokens: embedding -> LSTM -> logits over the vocabulary.

Trained with teacher forcing (the true previous tokens in, the next tokens as targets); generates by feeding
its own samples back in, one token at a time, from a softmax sharpened or flattened by a temperature.
"""

from __future__ import annotations

import torch
from torch import nn


class NoteLSTM(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden_size: int = 128,
        layers: int = 1,
        dropout: float = 0.0,
        pad_id: int = 0,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.lstm = nn.LSTM(embed_dim, hidden_size, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, state=None) -> tuple[torch.Tensor, tuple]:
        """ids (B, T) -> logits (B, T, V) for the token after each position, and the LSTM state."""
        out, state = self.lstm(self.drop(self.embed(ids)), state)
        return self.head(self.drop(out)), state

    @torch.no_grad()
    def sample(
        self,
        prefix: list[int],
        length: int,
        temperature: float = 1.0,
        *,
        banned: tuple[int, ...] = (),
        stop_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """Up to ``length`` new token ids after ``prefix`` (which starts with <bos>). Temperature 0 is greedy;
        ``banned`` ids are never drawn; drawing ``stop_id`` ends the sequence (it is not returned)."""
        self.eval()
        device = self.head.weight.device
        logits, state = self(torch.tensor([prefix], device=device))
        last, out = logits[0, -1].float(), []
        for _ in range(length):
            last[list(banned)] = -torch.inf
            if temperature == 0:
                token = int(last.argmax())
            else:
                probs = torch.softmax(last / temperature, dim=-1).cpu()
                token = int(torch.multinomial(probs, 1, generator=generator))
            if token == stop_id:
                break
            out.append(token)
            logits, state = self(torch.tensor([[token]], device=device), state)
            last = logits[0, -1].float()
        return out
