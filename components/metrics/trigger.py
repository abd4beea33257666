"""Trigger-word detections and their scores: runs of probabilities above a threshold, matched to true triggers.

A detection is a run of output steps whose probability is above ``threshold`` (runs separated by at most
``merge_gap`` steps count as one); its time is the time of its first step. It is a true positive when it falls
in a trigger's labelled window, [end - tolerance, end + label_seconds + tolerance], where ``end`` is the time
the trigger word ends; each trigger matches at most one detection. Unmatched detections are false positives,
unmatched triggers false negatives, counted per clip and summed.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def detection_runs(probabilities: np.ndarray, threshold: float = 0.5, merge_gap: int = 2) -> list[tuple[int, int]]:
    """(first, last) step of each run above ``threshold`` in one clip's probabilities."""
    steps = np.flatnonzero(np.asarray(probabilities) > threshold)
    runs: list[tuple[int, int]] = []
    for s in steps:
        if runs and s - runs[-1][1] <= merge_gap + 1:
            runs[-1] = (runs[-1][0], int(s))
        else:
            runs.append((int(s), int(s)))
    return runs


def match_detections(
    detected: list[float], ends: list[float], label_seconds: float, tolerance: float
) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one clip's detection times against trigger ends."""
    unmatched = sorted(ends)
    tp = 0
    for t in sorted(detected):
        hit = next((e for e in unmatched if e - tolerance <= t <= e + label_seconds + tolerance), None)
        if hit is not None:
            unmatched.remove(hit)
            tp += 1
    return tp, len(detected) - tp, len(unmatched)


def detection_scores(
    detected: list[list[float]], ends: list[list[float]], label_seconds: float, tolerance: float
) -> dict[str, float]:
    """Detection precision, recall and F1 over clips, with the summed counts."""
    tp, fp, fn = np.sum([match_detections(d, e, label_seconds, tolerance) for d, e in zip(detected, ends)], axis=0)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "detection_f1": float(f1),
        "detection_precision": float(precision),
        "detection_recall": float(recall),
        "true_positives": float(tp),
        "false_positives": float(fp),
        "false_negatives": float(fn),
    }


def step_scores(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Per-step precision, recall and ROC-AUC over all clips' steps."""
    y, p = np.asarray(labels).ravel(), np.asarray(probabilities).ravel()
    predicted = p > threshold
    out = {
        "step_precision": skm.precision_score(y, predicted, zero_division=0),
        "step_recall": skm.recall_score(y, predicted, zero_division=0),
        "step_accuracy": skm.accuracy_score(y, predicted),
    }
    if len(np.unique(y)) == 2:
        out["step_roc_auc"] = skm.roc_auc_score(y, p)
    return {k: float(v) for k, v in out.items()}
