"""Token vocabularies for sequence-to-sequence text: word- or character-level, built from the training split.

Ids 0-3 are the special tokens: ``<pad>`` fills batches to one length, ``<bos>`` starts every decoder input,
``<eos>`` ends every target, ``<unk>`` stands for tokens the training split never showed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
TokenLevel = Literal["word", "char"]

_WORD = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks: "Go." -> ["Go", "."]


def tokenize(text: str, level: TokenLevel, lowercase: bool = True) -> list[str]:
    text = text.strip().lower() if lowercase else text.strip()
    return list(text) if level == "char" else _WORD.findall(text)


def detokenize(tokens: Iterable[str], level: TokenLevel) -> str:
    return ("" if level == "char" else " ").join(tokens)


@dataclass(frozen=True)
class Vocab:
    tokens: tuple[str, ...]  # index = id; the four specials first
    level: TokenLevel = "word"
    lowercase: bool = True

    pad_id, bos_id, eos_id, unk_id = range(4)

    @classmethod
    def build(cls, texts: Iterable[str], level: TokenLevel, lowercase: bool = True, min_count: int = 1) -> Vocab:
        counts = Counter(t for text in texts for t in tokenize(text, level, lowercase))
        # Sorted by frequency, then alphabetically: the same texts always give the same ids.
        kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        return cls(SPECIALS + tuple(kept), level, lowercase)

    def __len__(self) -> int:
        return len(self.tokens)

    @cached_property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def encode(self, text: str, bos: bool = False, eos: bool = True) -> list[int]:
        index = self.index
        ids = [index.get(t, self.unk_id) for t in tokenize(text, self.level, self.lowercase)]
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Iterable[int]) -> str:
        """Text up to the first <eos>, without specials (an <unk> stays visible)."""
        out = []
        for i in ids:
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                out.append(self.tokens[i])
        return detokenize(out, self.level)

    def normalize(self, text: str) -> str:
        """The text as this vocabulary's tokenizer sees it, for comparing a prediction with a reference."""
        return detokenize(tokenize(text, self.level, self.lowercase), self.level)
