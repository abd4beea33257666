"""The grid language of sweeps and studies: ``train.lr=0.001,0.01`` is one key and its values.

Values are YAML scalars or flow collections (``0.1``, ``true``, ``null``, ``adam``, ``[64, 32]``), so they arrive
with the types params.yaml would give them; several keys multiply into their cartesian product. Torch- and
pandas-free: params.yaml's ``studies:`` sections are checked with it when the file loads.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
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


def parse_set(text: str) -> tuple[str, list[Any]]:
    """``"train.lr=0.001,0.01"`` -> ``("train.lr", [0.001, 0.01])``.

    Keys joined by ``+`` vary together (a zipped key): ``train.optimizer+train.lr=[gd, 0.5],[adam, 0.001]`` is two
    configurations, each value a list with one item per key."""
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
    parsed = []
    for raw in map(str.strip, _split_values(values)):
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
