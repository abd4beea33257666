"""Face verification and recognition metrics on embeddings, written out in NumPy (no scikit-learn: the trainer
validates with them too).

Verification asks of a PAIR of images "the same person?": a pair is accepted when the squared distance of its
embeddings is at most a threshold. The pairs are every same-person pair of a split and as many different-person
pairs drawn at random (balanced, so chance is 0.5). The threshold is tuned on the validation identities' pairs
(the accuracy-maximising one) and applied unchanged to the test identities', who never trained:

    accuracy      share of test pairs decided right at the tuned threshold
    roc_auc       the probability that a random same pair is closer than a random different pair
    tar_at_far    true accept rate at the loosest threshold whose false accept rate is at most ``far``

Recognition asks of ONE image "who is it?" against a database: the first image of each test identity is
enrolled, every other image is matched to its nearest enrolled embedding (rank-1, closed set; chance is one
over the number of identities).
"""

from __future__ import annotations

import numpy as np


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D) x (M, D) -> (N, M) squared Euclidean distances, in float64."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.maximum((a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :], 0.0)


def balanced_pairs(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (i, j, same): every same-label pair i < j, then as many different-label pairs drawn without
    repeats (fewer only when fewer exist)."""
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(labels), 1)
    same = labels[i] == labels[j]
    rng = np.random.default_rng(seed)
    different = np.flatnonzero(~same)
    keep = np.sort(
        np.concatenate([np.flatnonzero(same), rng.choice(different, min(same.sum(), len(different)), False)])
    )
    return i[keep], j[keep], same[keep]


def roc_auc(distances: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve of "same when close": the Mann-Whitney statistic, ties counted half."""
    distances, same = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    positives, negatives = same.sum(), (~same).sum()
    if not positives or not negatives:
        return float("nan")
    order = np.argsort(-distances, kind="mergesort")  # far to near: a higher rank is a surer "same"
    ranks = np.empty(len(distances))
    ranks[order] = np.arange(1, len(distances) + 1)
    _, inverse, counts = np.unique(-distances, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]  # tied distances share their mean rank
    return float((ranks[same].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def roc_curve(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true accept rates at every threshold (accept when distance <= threshold), from 0 to 1."""
    distances, same = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    thresholds = np.unique(distances)
    order = np.sort(distances[same]), np.sort(distances[~same])
    tar = np.searchsorted(order[0], thresholds, side="right") / max(1, same.sum())
    far = np.searchsorted(order[1], thresholds, side="right") / max(1, (~same).sum())
    return np.r_[0.0, far], np.r_[0.0, tar], np.r_[-np.inf, thresholds]


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the highest accuracy on these pairs: half-way between two neighbouring distances."""
    distances, same = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    order = np.argsort(distances, kind="mergesort")
    d, s = distances[order], same[order]
    # accepting the first k pairs (k = 0..n): right = same among them + different after them
    right = np.r_[0, np.cumsum(s)] + np.r_[(~s).sum(), (~s).sum() - np.cumsum(~s)]
    k = int(np.argmax(right))
    if k == 0:
        return float(d[0] - 1e-6)
    return float(d[k - 1] if k == len(d) else (d[k - 1] + d[k]) / 2)


def verification_metrics(distances: np.ndarray, same: np.ndarray, threshold: float, far: float) -> dict[str, float]:
    distances, same = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    fpr, tpr, _ = roc_curve(distances, same)
    accepted = distances <= threshold
    return {
        "accuracy": float((accepted == same).mean()),
        "roc_auc": roc_auc(distances, same),
        "tar_at_far": float(tpr[fpr <= far].max()),
        "far_at_threshold": float(accepted[~same].mean()),
        "tar_at_threshold": float(accepted[same].mean()),
    }


def enrolment(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the enrolled images (the first of each label) and of the queries (all the others)."""
    labels = np.asarray(labels)
    _, first = np.unique(labels, return_index=True)
    queries = np.setdiff1d(np.arange(len(labels)), first)
    return np.sort(first), queries


def recognition_accuracy(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Rank-1 accuracy of matching every query image to the nearest enrolled one (``enrolment``)."""
    labels = np.asarray(labels)
    enrolled, queries = enrolment(labels)
    nearest = squared_distances(embeddings[queries], embeddings[enrolled]).argmin(1)
    return float((labels[enrolled][nearest] == labels[queries]).mean())
