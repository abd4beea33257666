"""Monte Carlo dropout: what T stochastic passes say about a prediction.

    probs = estimator.predict_proba_samples(X, n_samples=30)  # (T, N, C), dropout on, seeded
    predictive_entropy(probs)   H[mean_t p_t]                    total uncertainty
    expected_entropy(probs)     mean_t H[p_t]                    aleatoric part
    mutual_information(probs)   H[mean_t p_t] - mean_t H[p_t]    epistemic part (disagreement between passes)

The passes come from ``TorchImageClassifier.predict_proba_samples`` (dropout layers in training mode,
everything else in eval mode, seeded). This module is numpy only, except the tables and figures (pandas,
matplotlib, imported when made).
"""

from __future__ import annotations

import numpy as np

from components.serving.conformal import ServesConformal

EPS = 1e-12


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats."""
    return -(p * np.log(p + EPS)).sum(axis=axis)


def predictive_entropy(probs: np.ndarray) -> np.ndarray:
    return entropy(probs.mean(axis=0))


def expected_entropy(probs: np.ndarray) -> np.ndarray:
    return entropy(probs).mean(axis=0)


def mutual_information(probs: np.ndarray) -> np.ndarray:
    # Clipped at 0: H[mean] >= mean H holds exactly (Jensen), rounding can dip below by ~1e-16.
    return np.maximum(predictive_entropy(probs) - expected_entropy(probs), 0.0)


def reliability_table(proba: np.ndarray, y_idx: np.ndarray, bins: int = 10):
    """Per confidence bin: count, mean confidence, accuracy; and the expected calibration error (ECE)."""
    import pandas as pd

    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == np.asarray(y_idx)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        hit = which == b
        rows.append(
            {
                "bin_lower": edges[b],
                "bin_upper": edges[b + 1],
                "count": int(hit.sum()),
                "confidence": float(confidence[hit].mean()) if hit.any() else np.nan,
                "accuracy": float(correct[hit].mean()) if hit.any() else np.nan,
            }
        )
    table = pd.DataFrame(rows)
    filled = table[table["count"] > 0]
    ece = float((filled["count"] * (filled["accuracy"] - filled["confidence"]).abs()).sum() / max(1, len(y_idx)))
    return table, ece


def reliability_figure(table, ece: float, title: str = "Reliability diagram (MC dropout, test)"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    width = table["bin_upper"] - table["bin_lower"]
    ax.bar(
        table["bin_lower"],
        table["accuracy"].fillna(0),
        width=width,
        align="edge",
        edgecolor="k",
        alpha=0.8,
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect calibration")
    ax.set(
        xlabel="confidence (mean of T passes)",
        ylabel="accuracy",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"{title}\nECE = {ece:.3f}",
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def entropy_figure(entropies: dict[str, np.ndarray], num_classes: int):
    """Histograms of predictive entropy per input set (test vs out-of-distribution)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, np.log(num_classes), 30)
    for name, values in entropies.items():
        ax.hist(values, bins=bins, density=True, histtype="step", lw=1.5, label=f"{name} (mean {values.mean():.2f})")
    ax.set(xlabel="predictive entropy (nats)", ylabel="density", title="MC-dropout uncertainty by input set")
    ax.legend()
    fig.tight_layout()
    return fig


class MCDropoutPredictor(ServesConformal):
    """uint8 images -> label, probability, predictive entropy and mutual information from T MC passes.

    With a conformal calibrator attached (``with_conformal``, components/serving/conformal.py) it also returns the
    calibrated ``prediction_set``: built from the deterministic probabilities (dropout off), the ones the
    calibration split was scored with, since a set from a fresh random draw of passes would not be the
    calibrated one."""

    def __init__(self, estimator, image_size: int, passes: int = 30):
        self.estimator = estimator
        self.image_size = image_size
        self.passes = passes

    def predict_frame(self, images):
        import pandas as pd

        from components.serving.predictors import ImageClassifierPredictor

        X = ImageClassifierPredictor(self.estimator, self.image_size)._prepare(images)
        probs = self.estimator.predict_proba_samples(X, self.passes)
        mean = probs.mean(axis=0)
        classes = self.estimator.classes_
        frame = pd.DataFrame(
            {
                "label": classes[mean.argmax(1)],
                "probability": mean.max(1),
                "predictive_entropy": predictive_entropy(probs),
                "mutual_information": mutual_information(probs),
            }
        )
        for j, c in enumerate(classes):
            frame[f"p_{c}"] = mean[:, j]
        if self.conformal is not None:
            self.add_sets(frame, self.estimator.predict_proba(X), classes)
        return frame
