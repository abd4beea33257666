"""Metrics and plots for evaluated models (scikit-learn metrics, matplotlib figures)."""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")  # headless: plots are files and MLflow artifacts, never windows
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn import metrics as skm

from components.evaluation.plots import confusion_figure, roc_figure, training_curves


@dataclass
class ChildRun:
    """One comparison arm (an optimiser, an AL round, a sweep point), logged as a nested MLflow run."""

    name: str
    params: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    history: pd.DataFrame | None = None  # one row per step; a "step" column (or the row index) is the x axis
    figures: dict[str, plt.Figure] = field(default_factory=dict)


@dataclass
class Report:
    metrics: dict[str, float]
    figures: dict[str, plt.Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # plot data for `dvc plots`
    children: list[ChildRun] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # other artifacts by file name, e.g. a generated MIDI


def classification_report(y_true, proba: np.ndarray, classes) -> Report:
    """Accuracy, precision, recall, F1 (macro; binary for two classes), ROC-AUC, a confusion matrix and ROC curve."""
    classes = np.asarray(classes)
    y_idx = np.searchsorted(classes, np.asarray(y_true))
    pred = proba.argmax(1)
    binary = len(classes) == 2
    average = "binary" if binary else "macro"
    m = {
        "accuracy": skm.accuracy_score(y_idx, pred),
        "precision": skm.precision_score(y_idx, pred, average=average, zero_division=0),
        "recall": skm.recall_score(y_idx, pred, average=average, zero_division=0),
        "f1": skm.f1_score(y_idx, pred, average=average, zero_division=0),
        "log_loss": skm.log_loss(y_idx, proba, labels=range(len(classes))),  # clips internally; ours broke row sums
    }
    if len(np.unique(y_idx)) == len(classes):
        m["roc_auc"] = (
            skm.roc_auc_score(y_idx, proba[:, 1])
            if binary
            else skm.roc_auc_score(y_idx, proba, multi_class="ovr", labels=range(len(classes)))
        )
    figures = {"confusion_matrix": confusion_figure(y_idx, pred, classes)}
    tables = {}
    if binary:
        fpr, tpr, _ = skm.roc_curve(y_idx, proba[:, 1])
        tables["roc"] = pd.DataFrame({"fpr": fpr, "tpr": tpr})
        figures["roc_curve"] = roc_figure(fpr, tpr, m.get("roc_auc"), positive=str(classes[1]))
    return Report({k: float(v) for k, v in m.items()}, figures, tables)


def served_classifier_metrics(frame: pd.DataFrame, y_true, classes, names=None) -> dict[str, float]:
    """``classification_report``'s metrics for a served classifier's output: the ``p_<name>`` column of each class.

    ``classes`` are the label values ``y_true`` holds (sorted, as ``classes_``); ``names`` the column names the
    predictor serves for them (default: the classes themselves).
    """
    import matplotlib.pyplot as plt

    names = classes if names is None else names
    proba = frame[[f"p_{n}" for n in names]].to_numpy(dtype=float, copy=True)  # pandas 3 may hand out a read-only view
    proba /= proba.sum(axis=1, keepdims=True)  # served as float32: rows sum to 1 only within ~1e-7
    report = classification_report(y_true, proba, classes)
    for fig in report.figures.values():
        plt.close(fig)
    return report.metrics


def classifier_evaluation(model, X_test, y_test, paths_test, history: pd.DataFrame) -> Report:
    """The standard report for a fitted classifier (``predict_proba``, ``classes_``) on its test split, with
    its training curves and a per-file prediction table."""
    proba = model.predict_proba(X_test)
    evaluation = classification_report(y_test, proba, model.classes_)
    evaluation.figures["training_curves"] = training_curves(history)
    evaluation.tables["history"] = history
    evaluation.tables["test_predictions"] = pd.DataFrame(
        {"path": paths_test, "label": y_test, "predicted": model.classes_[proba.argmax(1)], "probability": proba.max(1)}
    )
    return evaluation
