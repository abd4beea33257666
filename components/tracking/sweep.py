"""Hyperparameter sweeps as data: a grid of overrides to a project's params.yaml section, checked against the
project's settings, compared on one metric, and the best configuration written back.

``--set train.lr=0.001,0.01`` gives one swept key; several ``--set`` multiply (the grid is their cartesian
product). Values are YAML scalars or flow collections (``0.1``, ``true``, ``null``, ``adam``, ``[64, 32]``), so
they arrive with the types params.yaml would give them. The flow that runs the grid is flows/sweep.py.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from components.errors import DlfolioError
from components.grid import (  # noqa: F401 (the sweep's API)
    NUMBER,
    Range,
    expand_grid,
    format_value,
    label,
    parse_set,
    parse_sets,
    parse_space,
    probe_configs,
)
from components.settings import ProjectSettings, SettingsError, load_project_settings, read_params

# Metric names whose smaller values are better, for a --metric other than the project's primary one.
LOWER_IS_BETTER = re.compile(r"(loss|error|err|rmse|mse|mae|nll|perplexity|ece|brier|width|time)", re.I)


def validate_configs(
    params: str | Path, project: str, configs: Sequence[Mapping[str, Any]], schemas: Mapping[str, type[ProjectSettings]]
) -> list[ProjectSettings]:
    """Every configuration validated like params.yaml itself; the first bad one fails with the YAML path."""
    out = []
    for config in configs:
        try:
            out.append(load_project_settings(params, project, schemas, config))
        except SettingsError as exc:
            raise SettingsError(f"sweep configuration {label(config)}:\n{exc}") from None
    return out


class SweepError(DlfolioError, ValueError):
    """The sweep cannot be run or summarised as asked; the message says why."""


# --- comparing the runs -----------------------------------------------------------------------------------


def metric_goal(metric: str, primary_metric: str, higher_is_better: bool, goal: str | None = None) -> bool:
    """Whether higher values of ``metric`` are better: ``goal`` ('max'/'min') if given, the project's own
    direction for its primary metric, else guessed from the name (loss, rmse, error... are minimised)."""
    if goal is not None:
        return goal == "max"
    if metric == primary_metric:
        return higher_is_better
    return not LOWER_IS_BETTER.search(metric)


def comparison_table(results: Sequence[Mapping[str, Any]], metric: str) -> pd.DataFrame:
    """One row per configuration: its overrides, status, metrics and error. ``results`` items have
    ``overrides``, ``status`` ('ok' or 'failed'), ``metrics``, ``run_id`` and ``error``. A run whose metric is
    missing or not finite (it diverged) is marked failed, so it can never be the best."""
    rows = []
    for number, result in enumerate(results, 1):
        metrics = {k: v for k, v in (result.get("metrics") or {}).items() if isinstance(v, (int, float))}
        status, error = result["status"], result.get("error") or ""
        if status == "ok" and metric not in metrics:
            status, error = "failed", f"no metric {metric!r}; the run logged: {', '.join(sorted(metrics))}"
        elif status == "ok" and not math.isfinite(metrics[metric]):
            status, error = "failed", f"{metric} is {metrics[metric]}: the run diverged"
        rows.append(
            {
                "config": number,
                **{k: format_value(v) for k, v in result["overrides"].items()},
                "status": status,
                metric: metrics.get(metric, np.nan),
                **{k: v for k, v in sorted(metrics.items()) if k != metric},
                "run_id": result.get("run_id") or "",
                "error": error,
            }
        )
    return pd.DataFrame(rows)


def best_row(table: pd.DataFrame, metric: str, higher_is_better: bool) -> int | None:
    """Index of the best successful configuration (the first on ties), None when every run failed."""
    ok = table[(table["status"] == "ok") & np.isfinite(table[metric].astype(float))]
    if ok.empty:
        return None
    values = ok[metric].astype(float)
    return int(values.idxmax() if higher_is_better else values.idxmin())


def runner_up_row(table: pd.DataFrame, metric: str, higher_is_better: bool) -> int | None:
    """Index of the second-best successful configuration, None with fewer than two."""
    best = best_row(table, metric, higher_is_better)
    if best is None:
        return None
    return best_row(table.drop(index=best), metric, higher_is_better)


def montage_figure(runs: Sequence[tuple[str, str]], artifact: str, columns: int = 3):
    """One figure of the ``artifact`` image (e.g. plots/decision_boundary.png) of each (title, MLflow run id), in
    a grid; a run without it gets a panel saying so."""
    import tempfile

    import matplotlib.image as mpimg
    import mlflow
    from matplotlib.figure import Figure

    columns = max(1, min(columns, len(runs)))
    rows = max(1, math.ceil(len(runs) / columns))
    fig = Figure(figsize=(4.2 * columns, 3.6 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    with tempfile.TemporaryDirectory() as tmp:
        for ax, (title, run_id) in zip(axes, runs):
            try:
                image = mpimg.imread(
                    mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=tmp)
                )
                ax.imshow(image)
            except Exception as exc:  # noqa: BLE001 - a missing image is a panel of the figure, not a failed sweep
                ax.text(0.5, 0.5, f"no {artifact}:\n{type(exc).__name__}", ha="center", va="center", fontsize=8)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    for ax in axes[len(runs) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _log_axis(key: str, xs: np.ndarray) -> bool:
    positive = xs[xs > 0]
    return len(positive) == len(xs) and (
        key.split(".")[-1] in ("lr", "learning_rate", "weight_decay") or positive.max() / positive.min() >= 100
    )


def comparison_figure(configs: Sequence[Mapping[str, Any]], table: pd.DataFrame, metric: str, higher_is_better: bool):
    """The metric per configuration, the best starred and failed runs marked. With a numeric swept key it is
    the metric against that key (the learning rate if swept; log axis for learning rates and wide ranges), one
    line per combination of the other keys; otherwise one bar per configuration."""
    import matplotlib.pyplot as plt

    best = best_row(table, metric, higher_is_better)
    ok = (table["status"] == "ok").to_numpy()
    values = table[metric].astype(float).to_numpy()
    keys = list(configs[0]) if configs else []
    numeric = [k for k in keys if _numeric([c[k] for c in configs])]
    direction = "higher" if higher_is_better else "lower"
    if numeric:
        x_key = next((k for k in numeric if k.split(".")[-1] in ("lr", "learning_rate")), numeric[0])
        xs = np.array([c[x_key] for c in configs], dtype=float)
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(configs):
            groups.setdefault(label({k: v for k, v in c.items() if k != x_key}), []).append(i)
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for name, rows in groups.items():
            rows = [i for i in sorted(rows, key=lambda i: xs[i]) if ok[i]]
            ax.plot(xs[rows], values[rows], "o-", label=name or metric)
        if (~ok).any():  # failed runs have no value: a cross at the foot of the axis
            ax.plot(
                xs[~ok],
                np.zeros((~ok).sum()),
                "x",
                color="tab:red",
                ms=9,
                clip_on=False,
                transform=ax.get_xaxis_transform(),
                label="failed",
            )
        if best is not None:
            ax.plot(xs[best], values[best], "*", ms=16, color="gold", mec="black", label="best", zorder=3)
        if _log_axis(x_key, xs):
            ax.set_xscale("log")
        ax.set(xlabel=x_key)
        ax.legend(fontsize=8)
    else:
        fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(table) + 2), 4.5))
        names = ["\n".join(f"{k.split('.')[-1]}={format_value(v)}" for k, v in c.items()) for c in configs]
        colors = ["gold" if i == best else ("tab:blue" if ok[i] else "lightgray") for i in range(len(table))]
        bars = ax.bar(range(len(table)), np.where(ok, values, 0.0), color=colors)
        for i, bar in enumerate(bars):
            if not ok[i]:
                ax.annotate(
                    "failed",
                    (bar.get_x() + bar.get_width() / 2, 0),
                    ha="center",
                    va="bottom",
                    color="tab:red",
                    rotation=90,
                )
        ax.set_xticks(range(len(table)), names, fontsize=7)
    ax.set(ylabel=metric, title=f"Sweep: {metric} per configuration ({direction} is better)")
    fig.tight_layout()
    return fig


# --- writing the best configuration back -------------------------------------------------------------------


def apply_command(project: str, overrides: Mapping[str, Any]) -> str:
    sets = " ".join(f"--set {k}={format_value(v)}" for k, v in overrides.items())
    return f"dlfolio sweep {project} {sets} --write-best"


def _scalar_end(line: str, start: int, flow: bool) -> int:
    """End column of the YAML value starting at ``start``: a quoted string, a flow collection, or a plain
    scalar (up to a comment, or in a flow mapping up to the next ',' or closing bracket)."""
    char = line[start] if start < len(line) else ""
    if char in "'\"":
        i = start + 1
        while i < len(line):
            if line[i] == char and not (char == "'" and line[i + 1 : i + 2] == "'"):
                return i + 1
            i += 2 if char == "'" and line[i : i + 2] == "''" or char == '"' and line[i] == "\\" else 1
        raise SweepError(f"unterminated quoted value: {line.strip()}")
    if char in "[{":
        depth = 0
        for i in range(start, len(line)):
            depth += line[i] in "[{"
            depth -= line[i] in "]}"
            if depth == 0:
                return i + 1
        raise SweepError(f"a flow collection over several lines cannot be rewritten: {line.strip()}")
    stop = len(line)
    comment = re.search(r"\s#", line[start:])
    if comment:
        stop = start + comment.start()
    if flow:
        ends = [start + i for i, c in enumerate(line[start:stop]) if c in ",]}"]
        stop = min(ends, default=stop)
    return start + len(line[start:stop].rstrip())


def _closing_bracket(lines: list[str], row: int, col: int) -> tuple[int, int]:
    """Position of the bracket closing the flow collection that opens at (row, col)."""
    depth, quote = 0, None
    for r in range(row, len(lines)):
        for c in range(col if r == row else 0, len(lines[r])):
            char = lines[r][c]
            if quote:
                quote = None if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char == "#" and (c == 0 or lines[r][c - 1].isspace()):
                break
            elif char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    return r, c
    raise SweepError("unbalanced flow collection in the parameters file")


def _nested(keys: Sequence[str], value: Any) -> Any:
    for key in reversed(keys):
        value = {key: value}
    return value


def _set_one(text: str, project: str, dotted: str, value: Any) -> str:
    """``text`` with ``projects.<project>.<dotted>`` set to ``value``, changing only the lines it must."""
    from ruamel.yaml import YAML  # positions of keys and values in the file as written

    doc = YAML().load(text)
    node = doc["projects"][project]
    keys = dotted.split(".")
    lines = text.splitlines(keepends=True)
    for depth, key in enumerate(keys):
        is_map = hasattr(node, "lc") and isinstance(node, dict)
        rest = keys[depth + 1 :]
        if key in node and (not rest or isinstance(node[key], dict)):
            if rest:
                node = node[key]
                continue
            if isinstance(node[key], (dict, list)) and not node[key].fa.flow_style():
                raise SweepError(f"projects.{project}.{dotted} is a block collection in the file; set it by hand")
            row, col = node.lc.value(key)
            line = lines[row]
            end = _scalar_end(line, col, node.fa.flow_style())
            new = json.dumps(value) if isinstance(value, str) and line[col] == '"' else format_value(value)
            rest = line[end:]
            comment = re.match(r"(\s+)#", rest)
            if comment:  # keep the comment in its column where the new value leaves room
                rest = " " * max(1, len(comment.group(1)) - (len(new) - (end - col))) + rest[comment.end(1) :]
            lines[row] = line[:col] + new + rest
            return "".join(lines)
        if key in node and node[key] is not None:
            raise SweepError(f"projects.{project}.{'.'.join(keys[: depth + 1])} is a value in the file, not a section")
        if not is_map:
            raise SweepError(f"projects.{project}.{'.'.join(keys[:depth])} is not a mapping in the file")
        new = format_value(_nested(rest, value))
        if key in node:  # `key: null` -> `key: {rest: value}`
            row, col = node.lc.value(key)
            lines[row] = lines[row][:col] + new + lines[row][_scalar_end(lines[row], col, node.fa.flow_style()) :]
        elif node.fa.flow_style():
            first = next(iter(node))
            row, col = node.lc.key(first)
            close_row, close_col = _closing_bracket(lines, row, lines[row].rfind("{", 0, col))
            line = lines[close_row]
            head = line[:close_col].rstrip()
            lines[close_row] = f"{head}, {key}: {new}" + line[close_col:]
        elif len(node):
            row, col = node.lc.key(next(iter(node)))  # a new first key: valid in any block mapping
            lines.insert(row, " " * col + f"{key}: {new}\n")
        else:
            raise SweepError(f"projects.{project}.{'.'.join(keys[:depth])} is empty in the file; add {dotted} by hand")
        return "".join(lines)
    raise AssertionError("unreachable")


def write_best(params: str | Path, project: str, overrides: Mapping[str, Any]) -> str:
    """Write ``overrides`` into the project's section of ``params``, editing only the lines holding those
    values so the file's comments and layout stay as they were. The result is re-read and must equal the old
    file with exactly these changes, or nothing is written. Returns the new text."""
    path = Path(params)
    old = path.read_text()
    text = old
    for dotted, value in overrides.items():
        text = _set_one(text, project, dotted, value)
    before, after = read_params(path), yaml.safe_load(text)
    from components.settings import apply_overrides

    section = before["projects"][project] or {}
    expected = {
        **before,
        "projects": {**before["projects"], project: apply_overrides(section, overrides, before.get("defaults") or {})},
    }
    if after != expected:
        raise SweepError(
            f"{path}: could not write the best configuration without changing other values; "
            f"set it by hand: {label(overrides)}"
        )
    path.write_text(text)
    return text
