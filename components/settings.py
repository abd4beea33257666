"""Typed settings read from params.yaml.

params.yaml has two top-level sections:

    defaults:   keys shared by every project (a project's own keys win)
    projects:   one section per project, validated against that project's settings class

Every mistake is reported with its YAML path and the type that was expected, e.g.
``params.yaml: projects.face-mask.train.epochs: expected int, got 'ten'``.

What a section asks of its project's code is checked here too: a ``conformal:`` section needs a project that
serves conformal sets or intervals, a ``schedule`` one that scores a served model for promotion, and so on
(components/capabilities.py). The mismatch fails when params.yaml loads, naming the key, not after training.
"""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from components.capabilities import Capability
from components.cron import validate_cron
from components.errors import DlfolioError

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML has it (params.yaml: 6 ms, not 40)


class SettingsError(DlfolioError, ValueError):
    """params.yaml does not match the settings schema."""


class SettingsProblem(ValueError):
    """What a validator raises about a key below the section it validates. ``at`` is that key's path from the
    section (e.g. ``("kwargs", "widht")``), so the error names the very YAML key instead of the whole section."""

    def __init__(self, message: str, at: tuple[str | int, ...] = ()):
        super().__init__(message)
        self.at = tuple(at)


def _accepts_bool(annotation: Any) -> bool:
    """Whether a field typed ``annotation`` means to take true/false (bool, bool | None, Any, ...)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_accepts_bool(a) for a in typing.get_args(annotation))


class Section(BaseModel):
    """Base of every settings section: unknown keys are errors, values are immutable, floats are finite
    (``lr: .inf`` and ``.nan`` are refused) and a number is never true/false (``epochs: true`` is refused, where
    pydantic would read it as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and not _accepts_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError("true/false is not a number here")
        return value

    def requirement(self) -> tuple[Capability, str] | None:
        """The capability this section, when present, asks of its project's code, and why; None: nothing."""
        return None

    def further_requirements(self) -> list[tuple[Capability, str]]:
        """Capabilities asked by what the section's values turn on (say, one strategy of several), and why."""
        return []


class CudaProfile(Section):
    """How a ``train`` section changes when it trains on a CUDA GPU (``train.cuda``); the CPU never reads it.

    The defaults are sized for a 2-core laptop CPU. On a GPU a step of a small model costs about the same at batch
    32 as at 512 (launch-bound), so the profile takes larger batches (fewer steps) and scales the learning rate
    with them. ``lr_scale`` multiplies every LR of the section (``lr`` and ``lr_end``; a transfer project's
    fine-tuning phase, which is a copy of the section with its own LR, too), ``epoch_scale`` the epochs."""

    batch_size: int | None = Field(None, ge=1, description="the batch on CUDA; null: train.batch_size")
    lr_scale: float = Field(1.0, gt=0, description="LR on CUDA = this x train.lr (and x train.lr_end)")
    epoch_scale: float = Field(1.0, gt=0, description="epochs on CUDA = ceil(this x train.epochs)")
    compile: bool | None = Field(None, description="torch.compile on CUDA; null: train.compile")


class TrainSettings(Section):
    """What ``components.training.loop.fit`` reads: the loop takes this section itself, not a copy of it, resolved
    for its device by ``for_device`` (the ``cuda`` profile on a GPU, the section as written on the CPU).
    """

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1, description="the global batch: under torchrun each of N ranks takes 1/N")
    lr: float = Field(1e-3, gt=0, description="peak LR (onecycle), start LR (cosine, linear) or the LR (constant)")
    weight_decay: float = Field(0.0, ge=0)
    l1: float = Field(0.0, ge=0, description="L1 penalty l1 * sum |W| on weight matrices and kernels (not biases)")
    grad_clip: float | None = Field(1.0, gt=0, description="max gradient norm; null disables clipping")
    schedule: Literal["onecycle", "cosine", "constant", "linear"] = Field(
        "onecycle", description="linear: per epoch, LR from lr to lr_end and momentum from momentum to momentum_end"
    )
    lr_end: float = Field(1e-4, gt=0, description="linear schedule: the LR of the last epoch")
    patience: int = Field(5, ge=1, description="epochs without validation improvement before stopping")
    amp: bool = Field(True, description="bf16 autocast on CUDA (ignored on CPU)")
    amp_on_cpu: bool = Field(False, description="bf16 autocast on the CPU too (tests, CPUs with bf16 units)")
    num_workers: int = Field(0, ge=0)
    optimizer: Literal["adamw", "sgd", "nesterov", "adam", "rmsprop"] = Field(
        "adamw",
        description="sgd: SGD with `momentum` (0: plain SGD); nesterov: SGD with Nesterov momentum; adam: Adam with "
        "weight_decay as an L2 term in the gradient (adamw decouples it); rmsprop: RMSprop without momentum",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd/nesterov (linear schedule: of the first epoch)")
    momentum_end: float = Field(0.99, ge=0, lt=1, description="linear schedule, sgd/nesterov: of the last epoch")
    channels_last: bool | None = Field(None, description="null: on CUDA for models with 2-D convolutions")
    compile: bool = Field(False, description="torch.compile the training model (the first epoch pays for it)")
    cudnn_benchmark: bool = Field(
        False,
        description="cuDNN autotuning on CUDA: every new input shape pays a kernel search (6 s for MobileNetV2's "
        "fine-tuning, 37 s for face-mask-transfer on one H200), repaid only by long runs at fixed shapes",
    )
    cudnn: bool = Field(
        True,
        description="cuDNN on CUDA; false: torch's own convolution and RNN kernels, for short runs of small convnets "
        "where cuDNN's per-shape setup on the host outweighs its kernels (mobilenetv2-transfer: 8.6 s -> 2.1 s on one "
        "H200); the catalog's other convnets trained 1.4-2.7x slower without it, trigger-word's GRU 5.4x",
    )
    cuda_graphs: bool = Field(
        False,
        description="CUDA only: replay each training step's forward and backward from a CUDA graph (one per batch "
        "shape), for small models whose steps are bound by kernel launches; only for tasks whose loss draws no "
        "randomness on the host (a step that cannot be captured trains eagerly, with a warning)",
    )
    cuda: CudaProfile | None = Field(None, description="the GPU profile: batch, LR and epochs on CUDA; null: as on CPU")
    gpus: int = Field(
        1,
        ge=1,
        description="torchrun processes for the train stage: one per GPU (gloo processes on a CPU); 1: in-process",
    )

    def requirement(self) -> tuple[Capability, str] | None:
        if self.gpus > 1:
            return (
                Capability.DISTRIBUTED_TRAINING,
                f"train.gpus {self.gpus} runs the project's train() on torchrun processes",
            )
        return None

    def for_device(self, device_type: str) -> TrainSettings:
        """The section as it trains on ``device_type`` ('cpu', 'cuda', ...): itself, except on CUDA with a
        ``cuda`` profile, where the profile's batch, LR scale, epoch scale and compile switch apply."""
        profile = getattr(self, "cuda", None)  # None too in a TrainSettings pickled before the profile existed
        if device_type != "cuda" or profile is None:
            return self
        update: dict[str, Any] = {
            "lr": self.lr * profile.lr_scale,
            "lr_end": self.lr_end * profile.lr_scale,
            "epochs": max(1, math.ceil(self.epochs * profile.epoch_scale - 1e-9)),
            "cuda": None,
        }
        if profile.batch_size is not None:
            update["batch_size"] = profile.batch_size
        if profile.compile is not None:
            update["compile"] = profile.compile
        return self.model_copy(update=update)


class SplitSettings(Section):
    """Fractions of the labelled data held out; the rest trains."""

    val: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _leaves_some_to_train(self) -> SplitSettings:
        if self.val + self.test >= 1:
            raise ValueError(f"val + test is {self.val + self.test:g}: they must leave some data to train (< 1)")
        return self


class StudySettings(Section):
    """One named hyperparameter study of a project (``studies.NAME``): `dlfolio study` runs it as a sweep, one
    MLflow parent run with a child run per configuration and one comparison plot and table. Entries are in the
    language of ``dlfolio sweep --set``: ``grid`` entries ``KEY=V1,V2,...`` multiply into the configurations,
    ``fixed`` entries ``KEY=VALUE`` apply to every configuration (small epochs, a stage switched off) and are not
    compared. Every configuration is validated against the project's settings when params.yaml loads."""

    description: str = ""
    grid: tuple[str, ...] = Field(min_length=1, description="swept keys: KEY=V1,V2,... (the grid is their product)")
    fixed: tuple[str, ...] = Field((), description="KEY=VALUE set in every configuration")
    metric: str | None = Field(None, description="test metric compared; null: the project's primary metric")
    goal: Literal["max", "min"] | None = Field(None, description="null: the project's direction (or by the name)")
    montage: str | None = Field(
        None, description="a figure each configuration logs (plots/<montage>.png), tiled into one on the parent"
    )
    max_runs: int = Field(32, ge=1, description="refuse a grid with more configurations than this")

    @field_validator("grid", "fixed")
    @classmethod
    def _entries(cls, entries: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        from components.grid import parse_set

        keys = set()
        for i, entry in enumerate(entries):
            try:
                key, values = parse_set(entry)
            except SettingsError as exc:
                raise SettingsProblem(str(exc).removeprefix("--set "), at=(i,)) from None
            if info.field_name == "fixed" and len(values) != 1:
                raise SettingsProblem(f"{entry!r}: a fixed entry takes one value (KEY=VALUE)", at=(i,))
            if key in keys:
                raise SettingsProblem(f"{key} is given twice", at=(i,))
            keys.add(key)
        return entries

    @model_validator(mode="after")
    def _fixed_is_not_swept(self) -> StudySettings:
        swept = {key for keys in self.grid_values() for key in keys.split("+")}
        both = swept & set(self.fixed_values())
        if both:
            raise SettingsProblem(f"{', '.join(sorted(both))}: both swept (grid) and fixed", at=("fixed",))
        if len(self.configurations()) > self.max_runs:
            raise SettingsProblem(
                f"the grid has {len(self.configurations())} configurations, more than max_runs={self.max_runs}",
                at=("grid",),
            )
        return self

    def grid_values(self) -> dict[str, list[Any]]:
        from components.grid import parse_sets

        return parse_sets(self.grid)

    def fixed_values(self) -> dict[str, Any]:
        from components.grid import parse_set

        return {key: values[0] for key, values in map(parse_set, self.fixed)}

    def configurations(self) -> list[dict[str, Any]]:
        """The swept overrides of each configuration (without the fixed ones), first grid key slowest."""
        from components.grid import expand_grid

        return expand_grid(self.grid_values())

    def entry_of(self, loc: tuple[Any, ...]) -> tuple[str, int] | None:
        """(``grid`` or ``fixed``, index) of the entry whose key leads to the settings path ``loc``."""
        path = ".".join(map(str, loc))
        for field in ("grid", "fixed"):
            for i, entry in enumerate(getattr(self, field)):
                key = entry.partition("=")[0].strip()
                if path == key or path.startswith(key + ".") or key.startswith(path + "."):
                    return field, i
        return None


class ProjectSettings(Section):
    """Keys every project has. Projects subclass this with their own sections."""

    seed: int = Field(0, ge=0, lt=2**32, description="NumPy's generators take 0 to 2**32 - 1")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data_dir: Path = Field(description="the dataset; the loader defaults it to data/<project>")
    experiment: str | None = Field(None, description="MLflow experiment; defaults to the project name")
    schedule: str | None = Field(None, description="cron string: retrain, then promote (`dlfolio schedule`)")
    studies: dict[str, StudySettings] = Field(
        default_factory=dict, description="named hyperparameter studies (`dlfolio study`); never run by dvc repro"
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else validate_cron(value)

    @model_validator(mode="after")
    def _studies_validate(self) -> ProjectSettings:
        """Every configuration of every study is a valid section: a bad preset fails when params.yaml loads,
        naming the study's entry, not when `dlfolio study` reaches it."""
        if not self.studies:
            return self
        base = self.model_dump(exclude={"studies"})
        for name, study in self.studies.items():
            fixed = study.fixed_values()
            for config in study.configurations():
                overrides = {**fixed, **config}
                try:
                    section = apply_overrides(base, overrides)
                except SettingsError as exc:
                    raise SettingsProblem(str(exc), at=("studies", name)) from None
                try:
                    type(self).model_validate(section)
                except ValidationError as exc:
                    error = exc.errors()[0]
                    loc = tuple(error["loc"])
                    entry = study.entry_of(loc)
                    what = _describe(error, type(self), "").lstrip(".")
                    from components.grid import label

                    raise SettingsProblem(
                        f"configuration {label(config)}: {what}", at=("studies", name, *(entry or ()))
                    ) from None
        return self

    def requirements(self) -> Iterator[tuple[str, Capability, str]]:
        """(key, capability, why) for every key of this section that asks its project's code for a capability."""
        if self.schedule is not None:
            yield (
                "schedule",
                Capability.PROMOTION_SCORING,
                "a scheduled run promotes the retrained model only if score() rates it better than the champion",
            )
        for key, value in self:  # the optional stage sections (conformal, active_learning, ...) that are present
            if isinstance(value, Section) and (need := value.requirement()) is not None:
                yield key, *need
                for further in value.further_requirements():
                    yield key, *further


@dataclass(frozen=True)
class ProjectSchema:
    """What the loader knows of a project: its settings class and the capabilities its code declares
    (``components.projects.settings_schemas()`` builds one per catalog project)."""

    name: str
    settings: type[ProjectSettings]
    capabilities: frozenset[Capability] = frozenset()


CAPABILITY_ACTIONS = {  # what a project lacking the capability cannot do, for the error message
    Capability.CONFORMAL_SETS: "serve conformal sets",
    Capability.CONFORMAL_INTERVALS: "serve conformal intervals",
    Capability.ACTIVE_LEARNING: "run active learning",
    Capability.PROMOTION_SCORING: "score a served model for promotion",
    Capability.MC_SAMPLING: "sample its predictive distribution",
    Capability.DISTRIBUTED_TRAINING: "train under torchrun",
}


def type_name(annotation: Any) -> str:
    """How an error message names a type: ``int``, ``one of 'a', 'b'``, ``int or null``, ``a mapping``."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(annotation))
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
        if typing.get_origin(current) is dict:  # a mapping of sections (studies: {NAME: ...}): the key is a name
            annotation = current = typing.get_args(current)[1]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            break
        field = current.model_fields.get(str(key))
        if field is None:
            return None
        annotation = field.annotation
        current = annotation
    return type_name(annotation) if annotation is not None else None


def _describe(error: dict[str, Any], model: type[BaseModel], prefix: str) -> str:
    loc = tuple(error["loc"])
    path = ".".join([prefix, *map(str, loc)])
    problem = (error.get("ctx") or {}).get("error")
    if isinstance(problem, SettingsProblem):  # a validator that knows which key below it is wrong
        return f"{'.'.join([path, *map(str, problem.at)])}: {problem}"
    if error["type"] == "extra_forbidden":
        known = sorted(_fields_at(model, loc[:-1]))
        return f"{path}: unknown key (known keys here: {', '.join(known)})"
    if error["type"] == "missing":
        return f"{path}: required key is missing (expected {_expected_type(model, loc)})"
    expected = _expected_type(model, loc)
    got = error.get("input")
    detail = error["msg"]
    if error["type"] == "value_error" and expected == "a mapping":  # a check across the keys of a section
        return f"{path}: {detail.removeprefix('Value error, ')}"
    return f"{path}: expected {expected}, got {got!r} ({detail})"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for key in loc:
        if typing.get_origin(current) is dict:  # a mapping of sections: the key is a name, not a field
            current = typing.get_args(current)[1]
            continue
        current = current.model_fields[str(key)].annotation
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def read_params(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SettingsError(f"{path}: parameters file not found")
    try:
        with path.open(encoding="utf-8") as fh:
            raw = yaml.load(fh, Loader=SafeLoader) or {}
    except yaml.YAMLError as exc:  # one line, where the editor can jump to: file:line:column: what is wrong
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        raise SettingsError(f"{where}: YAML syntax error: {problem}" + (f" ({context})" if context else "")) from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: expected a mapping at the top level")
    unknown = set(raw) - {"defaults", "projects"}
    if unknown:
        raise SettingsError(f"{path}: unknown top-level key(s) {sorted(unknown)}; expected 'defaults' and 'projects'")
    for section in ("defaults", "projects"):
        if not isinstance(raw.get(section) or {}, dict):
            raise SettingsError(f"{path}: {section}: expected a mapping")
    return raw


def apply_overrides(
    section: Mapping[str, Any], overrides: Mapping[str, Any], defaults: Mapping[str, Any] | None = None, where: str = ""
) -> dict[str, Any]:
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
                raise SettingsError(
                    f"{where}{'.'.join(keys[: depth + 1])}: is a value ({child!r}), not a section, "
                    f"so {dotted} cannot be set"
                )
            node = child
        node[keys[-1]] = copy.deepcopy(value)
    return out


def load_project_settings(
    path: str | Path,
    project: str,
    schemas: Mapping[str, ProjectSchema],
    overrides: Mapping[str, Any] | None = None,
) -> ProjectSettings:
    """Validate one project's section (with the shared defaults merged in) against its schema, then what the
    section asks of the project's code against the capabilities it declares. ``overrides`` (dotted path ->
    value, e.g. from a sweep) replace values of the section before validation, so a mistake in them is reported
    with its YAML path like one in the file. ``data_dir`` defaults to ``data/<project>``."""
    return _validate_section(path, read_params(path), project, schemas, overrides)


def _validate_section(
    path: str | Path,
    raw: Mapping[str, Any],
    project: str,
    schemas: Mapping[str, ProjectSchema],
    overrides: Mapping[str, Any] | None = None,
) -> ProjectSettings:
    """load_project_settings on the parsed file ``raw`` (read once for all projects by load_all_settings)."""
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
        # A configuration of a sweep or study is one run: the file's studies were checked when it loaded, and
        # checked against this configuration they could fail for nothing (an MLP has no BatchNorm switch).
        section = {k: v for k, v in section.items() if k != "studies"}
        section = apply_overrides(section, overrides, defaults, where=f"{path}: projects.{project}.")
    merged = {"data_dir": f"data/{project}", **defaults, **section}
    schema = schemas[project]

    def prefix(top: str) -> str:  # where a key's value came from: the shared defaults or the project's section
        return "defaults" if top in defaults and top not in section else f"projects.{project}"

    try:
        settings = schema.settings.model_validate(merged)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            top = str(error["loc"][0]) if error["loc"] else ""
            lines.append(f"{path}: {_describe(error, schema.settings, prefix(top))}")
        raise SettingsError("\n".join(lines)) from None
    missing = [(key, need, why) for key, need, why in settings.requirements() if need not in schema.capabilities]
    if missing:
        declared = ", ".join(sorted(map(str, schema.capabilities))) or "none"
        raise SettingsError(
            "\n".join(
                f"{path}: {prefix(key)}.{key}: project {project} cannot {CAPABILITY_ACTIONS[need]} ({why}; "
                f"its capabilities: {declared})"
                for key, need, why in missing
            )
        )
    return settings


def load_all_settings(path: str | Path, schemas: Mapping[str, ProjectSchema]) -> dict[str, ProjectSettings]:
    """Validate every project section; unknown project names are errors too."""
    raw = read_params(path)
    names = list((raw.get("projects") or {}).keys())
    unknown = [n for n in names if n not in schemas]
    if unknown:
        raise SettingsError(
            f"{path}: projects.{unknown[0]}: unknown project; known projects: {', '.join(sorted(schemas))}"
        )
    return {name: _validate_section(path, raw, name, schemas) for name in names}


# --- fan-out: where independent pieces of work run (flows/fanout.py) ------------------------------------------

FANOUT_WORKERS_ENV = "DLFOLIO_WORKERS"
FANOUT_ADDRESS_ENV = "DLFOLIO_DASK_ADDRESS"


class FanoutSettings(Section):
    """Where a sweep's configurations and the active-learning stage's strategies run: ``workers`` local Dask
    worker processes (a LocalCluster on 127.0.0.1 for the flow run), or the Dask cluster whose scheduler is at
    ``address``. ``workers: 0`` runs them one after the other in the flow's own process. Read from the command
    line (``--workers``, ``--address``) or the environment (DLFOLIO_WORKERS, DLFOLIO_DASK_ADDRESS); not
    params.yaml, since where work runs changes no result."""

    workers: int = Field(2, ge=0, le=64, description="local Dask worker processes; 0: in the flow's process")
    address: str | None = Field(
        None,
        pattern=r"^(tcp|tls|ucx|ws|wss)://[^\s:/]+:\d{1,5}$",
        description="scheduler of a running Dask cluster, e.g. tcp://10.0.0.5:8786; overrides workers",
    )

    @classmethod
    def resolve(cls, workers: int | None = None, address: str | None = None, environ=None) -> FanoutSettings:
        """The command line's values over the environment's over the defaults, validated; a bad value is a
        one-line ``SettingsError`` naming where it came from."""
        import os

        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        where: dict[str, str] = {}
        for key, env in (("workers", FANOUT_WORKERS_ENV), ("address", FANOUT_ADDRESS_ENV)):
            if environ.get(env):
                values[key], where[key] = environ[env].strip(), env
        if workers is not None:
            values["workers"], where["workers"] = workers, "--workers"
        if address is not None:
            values["address"], where["address"] = address, "--address"
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            key = str(error["loc"][0]) if error["loc"] else ""
            shown = values.get(key)
            hint = " (e.g. tcp://127.0.0.1:8786)" if key == "address" else ""
            raise SettingsError(f"{where.get(key, key)}={shown}: {error['msg']}{hint}") from None
