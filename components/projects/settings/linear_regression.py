"""Settings of components/projects/linear_regression.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field, model_validator

from components.capabilities import Capability
from components.conformal.settings import ConformalSettings
from components.settings import ProjectSettings, Section

SAMPLE_FILE = "temperatures.csv"  # the offline sample (components/data/formats/temperatures.py writes it)


class TemperatureDataSettings(Section):
    file: str = SAMPLE_FILE
    min_rows: int = Field(20, ge=3)
    celsius_min: float = Field(-273.15, description="absolute zero: anything colder is a broken reading")
    celsius_max: float = 1000.0

    @model_validator(mode="after")
    def _range(self):
        if self.celsius_min >= self.celsius_max:
            raise ValueError(f"celsius_min {self.celsius_min} must be below celsius_max {self.celsius_max}")
        return self


class NeuronTrainSettings(Section):
    lr: float = Field(0.1, gt=0)
    epochs: int = Field(500, ge=1)
    standardize: bool = Field(True, description="scale inputs inside fit; w and b are reported in original units")
    log_every: int = Field(10, ge=1, description="epochs between logged points of the training curve")


class RegressionSplitSettings(Section):
    test: float = Field(0.2, gt=0, lt=1)


class LinearRegressionSettings(ProjectSettings):
    data: TemperatureDataSettings = TemperatureDataSettings()
    split: RegressionSplitSettings = RegressionSplitSettings()
    train: NeuronTrainSettings = NeuronTrainSettings()
    conformal: ConformalSettings | None = Field(None, description="intervals: methods 'absolute' (or 'cqr')")

    @model_validator(mode="after")
    def _leaves_training_data(self):
        calibration = self.conformal.calibration if self.conformal else 0.0
        if self.split.test + calibration >= 0.9:
            raise ValueError(
                f"split.test {self.split.test} + conformal.calibration {calibration} leave under 10% "
                "of the pairs to train on"
            )
        return self


# What LinearRegression's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset({Capability.CONFORMAL_INTERVALS, Capability.PROMOTION_SCORING})
