"""Settings of components/projects/word_debias.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.capabilities import Capability
from components.settings import ProjectSettings, Section


class GloveDataSettings(Section):
    file: str = "glove.6B.50d.txt"
    dimension: int = Field(50, ge=1, description="values per line after the word")
    min_words: int = Field(1000, ge=1)
    sample_words: int = Field(10000, ge=1, description="most frequent words in the offline sample (`dlfolio data`)")


class DebiasSettings(Section):
    direction: Literal["pca", "difference"] = Field(
        "pca", description="pca: top component of the definitional pairs; difference: e_woman - e_man"
    )
    equalize: bool = True


class WordDebiasSettings(ProjectSettings):
    data: GloveDataSettings = GloveDataSettings()
    debias: DebiasSettings = DebiasSettings()


# What WordDebias's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.PROMOTION_SCORING})
