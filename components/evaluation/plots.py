"""The figures every project draws the same way: training curves, run comparisons, confusion matrix, ROC.

A project says *what* a curves figure shows (which history columns, on which panel, against which reference
lines) with ``Panel``s; how it is drawn lives here once. The plot tables (``outputs/<project>/plots/*.csv``)
that ``dvc plots`` reads are the history frames themselves; nothing here changes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots are files and MLflow artifacts, never windows
import matplotlib.pyplot as plt
import pandas as pd
from sklearn import metrics as skm

# Reference lines in the order a panel names them: baselines first (dashed, dotted), the model's score last.
REFERENCE_STYLES = ({"color": "grey", "ls": "--"}, {"color": "grey", "ls": ":"}, {"color": "k", "lw": 0.8})


@dataclass(frozen=True)
class Panel:
    """One axes of a curves figure: history ``columns`` (column -> legend label, None for none) against the x
    column, and horizontal ``references`` (label -> y), e.g. a baseline's or the test score."""

    columns: Mapping[str, str | None]
    ylabel: str
    title: str
    yscale: str = "linear"
    ylim: tuple[float, float] | None = None
    references: Mapping[str, float] = field(default_factory=dict)
    legend: Mapping[str, Any] = field(default_factory=dict)  # e.g. fontsize, loc


# What a classifier's history holds (components.training.loop's rows): losses, then validation accuracy.
CLASSIFIER_CURVES = (
    Panel({"train_loss": "train", "val_loss": "validation"}, "loss", "Loss"),
    Panel({"val_accuracy": None}, "accuracy", "Validation accuracy"),
)


def _finish(ax, panel: Panel, x: str) -> None:
    for (label, y), style in zip(panel.references.items(), REFERENCE_STYLES):
        ax.axhline(y, label=label, **style)
    ax.set(xlabel=x, ylabel=panel.ylabel, title=panel.title, yscale=panel.yscale)
    if panel.ylim is not None:
        ax.set_ylim(*panel.ylim)
    labelled = [label for label in ax.get_legend_handles_labels()[1] if not label.startswith("_")]
    if len(labelled) > 1:  # a lone curve is named by the title
        ax.legend(**panel.legend)


def training_curves(
    history_frame: pd.DataFrame,
    metrics: Sequence[Panel] = CLASSIFIER_CURVES,
    *,
    x: str = "epoch",
    marker: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> plt.Figure:
    """One panel per ``Panel`` in a row, each column of ``history_frame`` drawn against ``x``."""
    fig, axes = plt.subplots(1, len(metrics), figsize=figsize or (4.5 * len(metrics), 3.5), squeeze=False)
    for ax, panel in zip(axes[0], metrics):
        for column, label in panel.columns.items():
            ax.plot(history_frame[x], history_frame[column], marker=marker, label=label)
        _finish(ax, panel, x)
    fig.tight_layout()
    return fig


def compare_curves(
    histories: Mapping[str, pd.DataFrame],
    panel: Panel,
    *,
    x: str = "epoch",
    marker: str | None = "o",
    figsize: tuple[float, float] = (6, 4),
) -> plt.Figure:
    """The panel's columns of several runs on one axes, labelled by run (e.g. RNN vs GRU vs LSTM)."""
    fig, ax = plt.subplots(figsize=figsize)
    for name, history in histories.items():
        for column, label in panel.columns.items():
            ax.plot(
                history[x],
                history[column],
                marker=marker,
                label=name if len(panel.columns) == 1 or not label else f"{name} ({label})",
            )
    _finish(ax, panel, x)
    fig.tight_layout()
    return fig


def confusion_figure(y_idx, pred, classes) -> plt.Figure:
    cm = skm.confusion_matrix(y_idx, pred, labels=range(len(classes)))
    fig, ax = plt.subplots(figsize=(4 + 0.3 * len(classes), 3.5 + 0.3 * len(classes)))
    skm.ConfusionMatrixDisplay(cm, display_labels=[str(c) for c in classes]).plot(ax=ax, colorbar=False)
    ax.set_title("Confusion matrix (test)")
    fig.tight_layout()
    return fig


def roc_figure(
    fpr,
    tpr,
    auc,
    positive: str,
    *,
    label: str | None = None,
    baselines: Mapping[str, tuple[Any, Any, float | None]] | None = None,
    title: str | None = None,
) -> plt.Figure:
    """The ROC curve, with the chance diagonal; ``baselines`` (name -> (fpr, tpr, auc)) drawn beside it, dotted
    (the first grey, further ones in colours of their own, so that two baselines stay apart)."""

    def named(name, value):
        text = ", ".join(x for x in (name, f"AUC = {value:.3f}" if value is not None else None) if x)
        return text or None

    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, label=named(label, auc))
    for k, (name, (b_fpr, b_tpr, b_auc)) in enumerate((baselines or {}).items()):
        ax.plot(b_fpr, b_tpr, ls=":", color="grey" if k == 0 else f"C{k}", label=named(name, b_auc))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title or f"ROC (positive: {positive})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def decision_boundary_figure(model, X, y, class_names: Sequence[str], X_test=None, y_test=None, steps: int = 200):
    """The predicted class over the plane of 2-D inputs ``X`` (shaded), the training points on it (and the test
    points, hollow): how smooth or contorted a classifier's boundary is (the course's regularisation plots)."""
    import numpy as np

    lo, hi = X.min(0) - 0.1, X.max(0) + 0.1
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], steps), np.linspace(lo[1], hi[1], steps))
    classes = np.asarray(model.classes_)
    grid_pred = model.predict_proba(np.c_[gx.ravel(), gy.ravel()]).argmax(1).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.contourf(gx, gy, grid_pred, levels=np.arange(len(classes) + 1) - 0.5, cmap="coolwarm", alpha=0.35)
    colours = plt.get_cmap("coolwarm")(np.linspace(0, 1, len(classes)))
    for j, c in enumerate(classes):
        name = class_names[int(c)] if int(c) < len(class_names) else str(c)
        ax.scatter(*X[y == c].T, s=12, color=colours[j], edgecolor="k", linewidth=0.3, label=f"{name} (train)")
        if X_test is not None:
            ax.scatter(*X_test[y_test == c].T, s=12, facecolor="none", edgecolor=colours[j], linewidth=0.8)
    ax.set(xlabel="x1", ylabel="x2", title="decision boundary (hollow: test points)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
