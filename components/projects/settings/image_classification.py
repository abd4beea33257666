"""Settings of components/projects/image_classification.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

import inspect
import re
from typing import Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, ValidationInfo, field_validator, model_validator

from components.active.settings import ActiveLearningSettings
from components.capabilities import Capability
from components.conformal.settings import ConformalSettings
from components.models.catalog import BUILDER_PATHS, FROM_THE_DATA, builder_arguments, builder_name, input_size_problem
from components.settings import ProjectSettings, Section, SettingsProblem, SplitSettings, TrainSettings, type_name


class ImageDataSettings(Section):
    classes: tuple[str, ...] = Field(min_length=2)
    image_size: int = Field(64, ge=8, description="images are resized to image_size x image_size")
    min_size: int = Field(16, ge=1, description="smallest accepted width/height in pixels")
    max_size: int = Field(4096, ge=1)
    min_per_class: int = Field(5, ge=1)
    min_class_share: float = Field(0.1, ge=0, lt=1)
    group_pattern: str | None = Field(
        None,
        description="a regex on each file name whose first group names the person (or other group) the image "
        "shows: the splits then keep each group in one part (null: split by class only)",
    )

    @field_validator("group_pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise SettingsProblem(f"not a regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _sizes(self):
        if self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} is larger than max_size {self.max_size}")
        return self


class ModelSettings(Section):
    """A network of components/models/catalog.py and its keyword arguments, each checked against the builder's
    signature and annotation here, so a typo fails `dlfolio check` instead of the first training step."""

    name: str = "mask_cnn"
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        if name not in BUILDER_PATHS:
            raise SettingsProblem(f"unknown model {name!r} (known: {', '.join(sorted(BUILDER_PATHS))})")
        return name

    @field_validator("kwargs")
    @classmethod
    def _builder_accepts(cls, kwargs: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("name")
        if name is None:  # the name itself was wrong: that error is reported already
            return kwargs
        builder = builder_name(name)
        arguments = builder_arguments(name)
        checked = {}
        for key, value in kwargs.items():
            if key in FROM_THE_DATA:
                raise SettingsProblem(f"set from the data, not params.yaml (known: {', '.join(arguments)})", at=(key,))
            if key not in arguments:
                raise SettingsProblem(f"unknown argument of {builder} (known: {', '.join(arguments)})", at=(key,))
            annotation, _ = arguments[key]
            try:  # coerced as the builder would read it, e.g. a YAML list for a tuple[int, ...]
                checked[key] = (
                    value if annotation is inspect.Parameter.empty else TypeAdapter(annotation).validate_python(value)
                )
            except ValidationError as exc:
                raise SettingsProblem(
                    f"{builder} expects {type_name(annotation)}, got {value!r} ({exc.errors()[0]['msg']})", at=(key,)
                ) from None
        missing = [k for k, (_, default) in arguments.items() if default is inspect.Parameter.empty and k not in kwargs]
        if missing:
            raise SettingsProblem(f"{builder} needs {', '.join(missing)}")
        return checked


class ImageClassificationSettings(ProjectSettings):
    data: ImageDataSettings
    model: ModelSettings = ModelSettings()
    augmentation: Literal["none", "light", "strong"] = "light"
    split: SplitSettings = SplitSettings()
    train: TrainSettings = TrainSettings()
    conformal: ConformalSettings | None = None  # absent: no calibration split, no conformal stage
    active_learning: ActiveLearningSettings | None = None  # absent: no active-learning stage

    @model_validator(mode="after")
    def _model_takes_the_images(self):
        if isinstance(self.model, ModelSettings):  # transfer projects' model sections check their own backbone
            check_model_input(self.model, self.data.image_size, channels=3)  # load_images converts to RGB
        return self


def check_model_input(model: ModelSettings, image_size: int, channels: int) -> None:
    problem = input_size_problem(model.name, model.kwargs, image_size, channels)
    if problem is not None:
        key, why = problem
        raise SettingsProblem(why, at=("model", "kwargs", key) if key else ("data", "image_size"))


# What ImageClassificationProject's code can do beyond the required stages (components/capabilities.py).
CAPABILITIES = frozenset(
    {
        Capability.CONFORMAL_SETS,
        Capability.ACTIVE_LEARNING,
        Capability.MC_SAMPLING,
        Capability.PROMOTION_SCORING,
        Capability.DISTRIBUTED_TRAINING,
    }
)
