"""Typed settings read from params.yaml.

params.yaml has two top-level sections:

    defaults:   keys shared by every project (a project's own keys win)
    projects:   one section per project, validated against that project's settings class

Every mistake is reported with its YAML path and the type that was expected, e.g.
``params.yaml: projects.face-mask.train.epochs: expected int, got 'ten'``.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from components.cron import validate_cron
from components.errors import DlfolioError


class SettingsError(DlfolioError, ValueError):
    """params.yaml does not match the settings schema."""


class Section(BaseModel):
    """Base of every settings section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainSettings(Section):
    """What ``components.training.loop.fit`` reads: the loop takes this section itself, not a copy of it."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1, description="the global batch: under torchrun each of N ranks takes 1/N")
    lr: float = Field(1e-3, gt=0, description="peak LR (onecycle), start LR (cosine, linear) or the LR (constant)")
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0, description="max gradient norm; null disables clipping")
    schedule: Literal["onecycle", "cosine", "constant", "linear"] = Field(
        "onecycle", description="linear: per epoch, LR from lr to lr_end and momentum from momentum to momentum_end")
    lr_end: float = Field(1e-4, gt=0, description="linear schedule: the LR of the last epoch")
    patience: int = Field(5, ge=1, description="epochs without validation improvement before stopping")
    amp: bool = Field(True, description="bf16 autocast on CUDA (ignored on CPU)")
    amp_on_cpu: bool = Field(False, description="bf16 autocast on the CPU too (tests, CPUs with bf16 units)")
    num_workers: int = Field(0, ge=0)
    optimizer: Literal["adamw", "sgd", "nesterov"] = Field("adamw", description="nesterov: SGD with Nesterov momentum")
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd/nesterov (linear schedule: of the first epoch)")
    momentum_end: float = Field(0.99, ge=0, lt=1, description="linear schedule, sgd/nesterov: of the last epoch")
    channels_last: bool | None = Field(None, description="null: on CUDA for models with 2-D convolutions")
    compile: bool = Field(False, description="torch.compile the training model (the first epoch pays for it)")


class SplitSettings(Section):
    """Fractions of the labelled data held out; the rest trains."""

    val: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)


class ProjectSettings(Section):
    """Keys every project has. Projects subclass this with their own sections."""

    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data_dir: Path
    experiment: str | None = Field(None, description="MLflow experiment; defaults to the project name")
    schedule: str | None = Field(None, description="cron string: retrain, then promote (`dlfolio schedule`)")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else validate_cron(value)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping"
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(annotation, "__name__", str(annotation))


def _expected_type(model: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """Walk the schema along ``loc`` and name the annotation found there."""
    current: Any = model
    annotation: Any = None
    for key in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            break
        field = current.model_fields.get(str(key))
        if field is None:
            return None
        annotation = field.annotation
        current = annotation
    return _type_name(annotation) if annotation is not None else None


def _describe(error: dict[str, Any], model: type[BaseModel], prefix: str) -> str:
    loc = tuple(error["loc"])
    path = ".".join([prefix, *map(str, loc)])
    if error["type"] == "extra_forbidden":
        known = sorted(_fields_at(model, loc[:-1]))
        return f"{path}: unknown key (known keys here: {', '.join(known)})"
    if error["type"] == "missing":
        return f"{path}: required key is missing (expected {_expected_type(model, loc)})"
    expected = _expected_type(model, loc)
    got = error.get("input")
    detail = error["msg"]
    return f"{path}: expected {expected}, got {got!r} ({detail})"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for key in loc:
        current = current.model_fields[str(key)].annotation
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def read_params(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SettingsError(f"{path}: parameters file not found")
    with path.open() as fh:
        raw = yaml.safe_load(fh) or {}
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: expected a mapping at the top level")
    unknown = set(raw) - {"defaults", "projects"}
    if unknown:
        raise SettingsError(f"{path}: unknown top-level key(s) {sorted(unknown)}; expected 'defaults' and 'projects'")
    for section in ("defaults", "projects"):
        if not isinstance(raw.get(section) or {}, dict):
            raise SettingsError(f"{path}: {section}: expected a mapping")
    return raw


def apply_overrides(section: Mapping[str, Any], overrides: Mapping[str, Any], defaults: Mapping[str, Any] | None = None,
                    where: str = "") -> dict[str, Any]:
    """A copy of ``section`` with each dotted path (``train.lr``) set to its value; missing sections are created,
    and a top-level section that only ``defaults`` has starts from the defaults' copy (the merge is shallow)."""
    out = copy.deepcopy(dict(section))
    for dotted, value in overrides.items():
        keys = dotted.split(".")
        if not all(keys):
            raise SettingsError(f"{where}{dotted}: not a dotted key path like train.lr")
        if keys[0] not in out and keys[0] in (defaults or {}):
            out[keys[0]] = copy.deepcopy(defaults[keys[0]])
        node = out
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise SettingsError(f"{where}{'.'.join(keys[:depth + 1])}: is a value ({child!r}), not a section, "
                                    f"so {dotted} cannot be set")
            node = child
        node[keys[-1]] = copy.deepcopy(value)
    return out


def load_project_settings(
    path: str | Path,
    project: str,
    schemas: Mapping[str, type[ProjectSettings]],
    overrides: Mapping[str, Any] | None = None,
) -> ProjectSettings:
    """Validate one project's section (with the shared defaults merged in) against its schema. ``overrides``
    (dotted path -> value, e.g. from a sweep) replace values of the section before validation, so a mistake in
    them is reported with its YAML path like one in the file."""
    raw = read_params(path)
    projects = raw.get("projects") or {}
    if project not in schemas:
        raise SettingsError(f"unknown project {project!r}; known projects: {', '.join(sorted(schemas))}")
    if project not in projects:
        raise SettingsError(f"{path}: projects.{project}: section is missing")
    section = projects[project] or {}
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: projects.{project}: expected a mapping, got {section!r}")
    defaults = raw.get("defaults") or {}
    if overrides:
        section = apply_overrides(section, overrides, defaults, where=f"{path}: projects.{project}.")
    merged = {**defaults, **section}
    schema = schemas[project]
    try:
        settings = schema.model_validate(merged)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            top = str(error["loc"][0]) if error["loc"] else ""
            prefix = "defaults" if top in defaults and top not in section else f"projects.{project}"
            lines.append(f"{path}: {_describe(error, schema, prefix)}")
        raise SettingsError("\n".join(lines)) from None
    return settings


def load_all_settings(path: str | Path, schemas: Mapping[str, type[ProjectSettings]]) -> dict[str, ProjectSettings]:
    """Validate every project section; unknown project names are errors too."""
    raw = read_params(path)
    names = list((raw.get("projects") or {}).keys())
    unknown = [n for n in names if n not in schemas]
    if unknown:
        raise SettingsError(
            f"{path}: projects.{unknown[0]}: unknown project; known projects: {', '.join(sorted(schemas))}"
        )
    return {name: load_project_settings(path, name, schemas) for name in names}
