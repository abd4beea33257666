"""The grid language of sweeps and studies: ``train.lr=0.001,0.01`` is one key and its values.

Values are YAML scalars or flow collections (``0.1``, ``true``, ``null``, ``adam``, ``[64, 32]``), so they arrive
with the types params.yaml would give them; several keys multiply into their cartesian product. Torch- and
pandas-free: params.yaml's ``studies:`` sections are checked with it when the file loads.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from components.settings import SettingsError

NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


# --- the grid ----------------------------------------------------------------------------------------------


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets and quotes, so ``[64, 32],[128]`` is two values."""
    parts, depth, quote, current = [], 0, None, ""
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    return [*parts, current]


def _number(value: Any) -> Any:
    """A string that reads as a float (YAML 1.1 reads 1e-6, without a dot, as a string) becomes the number."""
    if isinstance(value, str) and NUMBER.fullmatch(value) and not re.fullmatch(r"[-+]?\d+", value):
        return float(value)
    return value


def parse_set(text: str, ranges: bool = False) -> tuple[str, list[Any] | Range]:
    """``"train.lr=0.001,0.01"`` -> ``("train.lr", [0.001, 0.01])``.

    Keys joined by ``+`` vary together (a zipped key): ``train.optimizer+train.lr=[gd, 0.5],[adam, 0.001]`` is two
    configurations, each value a list with one item per key. With ``ranges`` (an Optuna search) the values may be
    one range instead, ``train.lr=1e-4..1e-1:log`` (``Range``); a grid refuses one, naming ``--search optuna``."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise SettingsError(f"--set {text!r}: expected KEY=VALUE[,VALUE...], e.g. train.lr=0.001,0.01")
    keys = key.split("+")
    for one in keys:
        if not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", one):
            raise SettingsError(f"--set {text!r}: {one!r} is not a dotted key path like train.lr")
    if len(set(keys)) < len(keys):
        raise SettingsError(f"--set {text!r}: a key is named twice in {key!r}")
    parts = _split_values(values)
    if any(_is_range(part.strip()) for part in parts):
        if not ranges:
            raise SettingsError(
                f"--set {key}={values.strip()}: a range needs --search optuna; a grid takes listed values, KEY=V1,V2"
            )
        if len(parts) > 1:
            raise SettingsError(f"--set {key}={values.strip()}: a range is a key's only value; {RANGE_HELP}")
        if len(keys) > 1:
            raise SettingsError(f"--set {key}: keys joined by + take listed values ([v1, v2],...), not a range")
        return key, parse_range(key, values.strip())
    parsed = []
    for raw in map(str.strip, parts):
        if NUMBER.fullmatch(raw) and not re.fullmatch(r"[-+]?\d+", raw):
            parsed.append(float(raw))  # YAML 1.1 reads 1e-6 (no dot) as a string; a sweep means the number
            continue
        try:
            parsed.append(yaml.safe_load(raw) if raw else None)
        except yaml.YAMLError as exc:
            raise SettingsError(f"--set {key}: cannot read value {raw!r} as YAML ({exc.problem})") from None
    if len(keys) > 1:
        for value in parsed:
            if not isinstance(value, list) or len(value) != len(keys):
                raise SettingsError(
                    f"--set {key}: each value of {len(keys)} keys joined by + is a list of {len(keys)} "
                    f"([v1, v2]), got {format_value(value)}"
                )
        parsed = [[_number(v) for v in value] for value in parsed]
    return key, parsed


def parse_sets(texts: Sequence[str]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for text in texts:
        key, values = parse_set(text)
        if key in grid:
            raise SettingsError(f"--set {key}: given twice; list all its values in one --set {key}=A,B")
        grid[key] = values
    if not grid:
        raise SettingsError("a sweep needs at least one --set KEY=VALUE[,VALUE...]")
    return grid


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product, first key slowest: {a: [1, 2], b: [x, y]} -> a1 bx, a1 by, a2 bx, a2 by."""
    keys = list(grid)
    configs = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        config: dict[str, Any] = {}
        for key, value in zip(keys, combo):
            config.update(zip(key.split("+"), value) if "+" in key else {key: value})
        configs.append(config)
    return configs


def format_value(value: Any) -> str:
    """A value as one would type it after ``--set key=`` (YAML flow style)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def label(overrides: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in overrides.items())


# --- ranges: the search space of an Optuna search -----------------------------------------------------------

RANGE_HELP = "a range is LOW..HIGH, LOW..HIGH:log or LOW..HIGH:STEP, e.g. 1e-4..1e-1:log or 10..100:10"
INTEGER = re.compile(r"[-+]?\d+")


@dataclass(frozen=True)
class Range:
    """A numeric interval to search: integers when both ends are written as integers (``10..100``), floats
    otherwise (``1e-4..0.1``); ``log`` samples the logarithm uniformly, ``step`` quantises (``10..100:10``)."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False

    def text(self) -> str:
        def number(x: float) -> str:
            return str(int(x)) if self.integer else format_value(float(x))

        option = ":log" if self.log else (f":{number(self.step)}" if self.step is not None else "")
        return f"{number(self.low)}..{number(self.high)}{option}"

    def ends(self) -> list[Any]:
        """The two ends, as the values a configuration would take (for checking them against the settings)."""
        cast = int if self.integer else float
        return [cast(self.low), cast(self.high)]


def _is_range(raw: str) -> bool:
    """``LOW..HIGH[:OPTION]`` with a number on at least one side (``../data`` stays a path)."""
    low, sep, rest = raw.partition("..")
    high = rest.partition(":")[0]
    return bool(sep) and bool(NUMBER.fullmatch(low.strip()) or NUMBER.fullmatch(high.strip()))


def parse_range(key: str, raw: str) -> Range:
    """``"1e-4..1e-1:log"`` -> ``Range(0.0001, 0.1, log=True)``; a bad range is a one-line ``SettingsError``."""
    where = f"--set {key}={raw}"
    low_text, _, rest = raw.partition("..")
    high_text, _, option = rest.partition(":")
    low_text, high_text, option = low_text.strip(), high_text.strip(), option.strip()
    for end in (low_text, high_text):
        if not NUMBER.fullmatch(end):
            raise SettingsError(f"{where}: {end!r} is not a number; {RANGE_HELP}")
    integer = bool(INTEGER.fullmatch(low_text) and INTEGER.fullmatch(high_text))
    low, high = float(low_text), float(high_text)
    if low >= high:
        raise SettingsError(f"{where}: the low end {low_text} is not below the high end {high_text}")
    log, step = False, None
    if option == "log":
        log = True
        if low <= 0:
            raise SettingsError(f"{where}: a log range needs a low end above 0, got {low_text}")
    elif option:
        if not NUMBER.fullmatch(option) or float(option) <= 0:
            raise SettingsError(f"{where}: unknown range option {option!r}; {RANGE_HELP}")
        if integer and not INTEGER.fullmatch(option):
            raise SettingsError(f"{where}: an integer range takes an integer step, got {option}")
        step = float(option)
        if step > high - low:
            raise SettingsError(f"{where}: the step {option} is wider than the range")
    return Range(low, high, log, step, integer)


def parse_space(texts: Sequence[str]) -> dict[str, list[Any] | Range]:
    """An Optuna search space: each ``--set`` is a list of values (a categorical choice) or one range."""
    space: dict[str, list[Any] | Range] = {}
    for text in texts:
        key, values = parse_set(text, ranges=True)
        if key in space:
            raise SettingsError(f"--set {key}: given twice; give its values or its range in one --set")
        space[key] = values
    if not space:
        raise SettingsError("a search needs at least one --set KEY=V1,V2 or KEY=LOW..HIGH")
    return space


def probe_configs(space: Mapping[str, Sequence[Any] | Range]) -> list[dict[str, Any]]:
    """Configurations that together take every listed value and both ends of every range, each key once at a
    time (the others at their first value): what the settings check before a search spends a trial."""
    options = {k: v.ends() if isinstance(v, Range) else list(v) for k, v in space.items()}
    first = {k: v[0] for k, v in options.items()}
    probes = []
    for key, values in options.items():
        for value in values:
            probes.append(expand_grid({k: [value if k == key else v] for k, v in first.items()})[0])
    return [dict(p) for p in {label(p): p for p in probes}.values()]


def space_text(values: Sequence[Any] | Range) -> str:
    return values.text() if isinstance(values, Range) else ",".join(map(format_value, values))
