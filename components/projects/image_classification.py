"""Image classification from a folder of class subfolders: the shape shared by the vision projects."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, TypeAdapter, ValidationError, ValidationInfo, field_validator, model_validator

from components.active.settings import ActiveLearningSettings
from components.conformal.calibration import ConformalSettings
from components.data.formats.images import load_images
from components.data.splits import stratified_split
from components.evaluation.report import Report, classifier_evaluation, served_classifier_metrics
from components.models import BUILDERS, FROM_THE_DATA, builder_arguments, input_size_problem
from components.models.params import count_parameters
from components.projects.base import Capability, Project, Trained
from components.serving.predictors import ImageClassifierPredictor
from components.settings import ProjectSettings, Section, SettingsProblem, SplitSettings, TrainSettings, type_name
from components.training.estimators import TorchImageClassifier
from components.validation.expectations import ImageRules, ValidationReport, validate_image_folder


class ImageDataSettings(Section):
    classes: tuple[str, ...] = Field(min_length=2)
    image_size: int = Field(64, ge=8, description="images are resized to image_size x image_size")
    min_size: int = Field(16, ge=1, description="smallest accepted width/height in pixels")
    max_size: int = Field(4096, ge=1)
    min_per_class: int = Field(5, ge=1)
    min_class_share: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _sizes(self):
        if self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} is larger than max_size {self.max_size}")
        return self


class ModelSettings(Section):
    """A network from components/models BUILDERS and its keyword arguments, each checked against the builder's
    signature and annotation here, so a typo fails `dlfolio check` instead of the first training step."""

    name: str = "mask_cnn"
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        if name not in BUILDERS:
            raise SettingsProblem(f"unknown model {name!r} (known: {', '.join(sorted(BUILDERS))})")
        return name

    @field_validator("kwargs")
    @classmethod
    def _builder_accepts(cls, kwargs: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("name")
        if name is None:  # the name itself was wrong: that error is reported already
            return kwargs
        builder = BUILDERS[name].__name__
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


@dataclass
class ImageSplits:
    classes: np.ndarray
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    paths_test: list[str]
    # Held out for conformal calibration only: never trained on, never used for early stopping.
    X_cal: np.ndarray | None = None
    y_cal: np.ndarray | None = None
    paths_cal: list[str] | None = None
    paths_train: list[str] | None = None  # what `dlfolio label export` shows a labeller

    def sizes(self) -> dict[str, int]:
        sizes = {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}
        return sizes if self.y_cal is None else {**sizes, "calibration": len(self.y_cal)}


class ImageClassificationProject(Project):
    Settings = ImageClassificationSettings
    capabilities = frozenset({Capability.CONFORMAL_SETS, Capability.ACTIVE_LEARNING, Capability.PROMOTION_SCORING})

    def rules(self, settings: ImageClassificationSettings) -> ImageRules:
        d = settings.data
        return ImageRules(
            classes=d.classes,
            min_size=d.min_size,
            max_size=d.max_size,
            min_per_class=d.min_per_class,
            min_class_share=d.min_class_share,
        )

    def validate(self, settings: ImageClassificationSettings) -> ValidationReport:
        report, _ = validate_image_folder(settings.data_dir, self.rules(settings))
        return report

    def prepare(self, settings: ImageClassificationSettings) -> ImageSplits:
        from components.data.formats.images import scan_image_folder

        manifest = scan_image_folder(settings.data_dir)
        images = load_images(settings.data_dir, manifest, settings.data.image_size)
        labels = manifest["label"].to_numpy()
        fractions = {"test": settings.split.test, "val": settings.split.val}
        if settings.conformal is not None:  # carved last, so test and val are the same with or without it
            fractions["calibration"] = settings.conformal.calibration
        split = stratified_split(labels, fractions, settings.seed)
        pick = lambda name: (images[split[name]], labels[split[name]])  # noqa: E731
        (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = pick("train"), pick("val"), pick("test")
        X_cal, y_cal = pick("calibration") if "calibration" in split else (None, None)
        paths = lambda name: manifest["path"].to_numpy()[split[name]].tolist() if name in split else None  # noqa: E731
        return ImageSplits(
            np.array(sorted(settings.data.classes)),
            X_tr,
            y_tr,
            X_va,
            y_va,
            X_te,
            y_te,
            paths("test"),
            X_cal,
            y_cal,
            paths("calibration"),
            paths("train"),
        )

    def estimator(
        self, settings: ImageClassificationSettings, checkpoint_dir: Path | None = None
    ) -> TorchImageClassifier:
        return TorchImageClassifier(
            model=settings.model,
            train=settings.train,
            augmentation=settings.augmentation,
            device=settings.device,
            seed=settings.seed,
            checkpoint_dir=checkpoint_dir,
        )

    def train(self, data: ImageSplits, settings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        est = self.estimator(settings, checkpoint_dir)
        est.fit(data.X_train, data.y_train, data.X_val, data.y_val, on_epoch=on_epoch)
        history = pd.DataFrame(est.fit_result_.as_rows())
        params = count_parameters(est.module_)
        return Trained(
            est,
            history,
            {
                "best_epoch": est.fit_result_.best_epoch,
                "parameters": params,
                "stopped_early": est.fit_result_.stopped_early,
                **data.sizes(),
            },
        )

    def evaluate(self, trained: Trained, data: ImageSplits, settings) -> Report:
        return classifier_evaluation(trained.model, data.X_test, data.y_test, data.paths_test, trained.history)

    def score(self, model, data: ImageSplits, settings) -> dict[str, float]:
        # one p_<class> column per class, as ImageClassifierPredictor serves
        return served_classifier_metrics(model.predict(data.X_test), data.y_test, data.classes)

    def predictor(self, trained: Trained, data: ImageSplits, settings):
        return ImageClassifierPredictor(trained.model, settings.data.image_size), data.X_test[:2]
