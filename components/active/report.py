"""How active-learning strategies compare: learning curves and label-efficiency ratios (pandas, matplotlib)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from components.active.loop import label_efficiency


def efficiency_table(
    curves: pd.DataFrame, full_accuracy: float, fractions=(0.9, 0.95), baseline: str = "random"
) -> pd.DataFrame:
    """Label-efficiency at each target ``fraction x full_accuracy``: labels needed per strategy and the ratio
    to the baseline's (below 1: the strategy needs fewer labels than random)."""
    tables = []
    for fraction in fractions:
        table = label_efficiency(curves, fraction * full_accuracy, baseline)
        tables.append(table.assign(fraction=fraction))
    return pd.concat(tables, ignore_index=True)


def learning_curve_figure(
    curves: pd.DataFrame,
    full_accuracy: float | None = None,
    fractions=(),
    title: str = "Active learning: test accuracy against labels used",
) -> plt.Figure:
    """Mean test accuracy per strategy over seeds (band: +-1 std), random drawn dashed as the baseline."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy, runs in curves.groupby("strategy", sort=False):
        stats = runs.groupby("labels")["accuracy"].agg(["mean", "std"]).fillna(0.0)
        style = {"ls": "--", "color": "k"} if strategy == "random" else {}
        ax.plot(stats.index, stats["mean"], label=strategy, **style)
        ax.fill_between(
            stats.index,
            stats["mean"] - stats["std"],
            stats["mean"] + stats["std"],
            alpha=0.15,
            color=style.get("color"),
        )
    if full_accuracy is not None:
        ax.axhline(full_accuracy, color="grey", lw=0.8, label=f"all labels ({full_accuracy:.3f})")
        for fraction in fractions:
            ax.axhline(fraction * full_accuracy, color="grey", lw=0.6, ls=":")
    ax.set(xlabel="labelled examples", ylabel="test accuracy", title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def format_ratio(row) -> str:
    """'0.45 ± 0.05' when every run and its baseline reached the target; otherwise what is known."""
    if row["reached"] == 0:
        return "not reached"
    if np.isnan(row["ratio_mean"]) and not np.isnan(row.get("ratio_below", np.nan)):
        return f"< {row['ratio_below']:.2f} (random did not reach it)"
    text = "n/a" if np.isnan(row["ratio_mean"]) else f"{row['ratio_mean']:.2f} ± {row['ratio_std']:.2f}"
    return text if row["reached"] == row["runs"] else f"{text} ({row['reached']}/{row['runs']} runs reached)"
