"""Settings of components/projects/mnist_mc_dropout.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.projects.settings.array_classification import ArrayClassificationSettings
from components.settings import Section


class UncertaintySettings(Section):
    passes: int = Field(30, ge=2, description="T: stochastic forward passes per input")
    ood: tuple[Literal["rotated", "inverted", "digits"], ...] = Field(
        ("rotated", "digits"), min_length=1, description="OOD probes; with real MNIST use rotated and inverted"
    )
    max_inputs: int = Field(2000, ge=10, description="inputs per set for the MC analysis (first N of each)")
    bins: int = Field(10, ge=2, description="confidence bins of the reliability diagram")


class MnistMCDropoutSettings(ArrayClassificationSettings):
    uncertainty: UncertaintySettings = UncertaintySettings()
