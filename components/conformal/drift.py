"""A drift warning for served conformal models: do a batch's conformity scores still look exchangeable with the
calibration scores?

Split-conformal coverage rests on one assumption, that new rows are exchangeable with the calibration rows. A
served model cannot see labels, so it tests a label-free score instead: for a classifier ``1 - max probability``
(LAC's score of the predicted label), for a regressor its predictions (a shift in what it predicts). The batch's
scores and the calibration scores go into a two-sample test (Kolmogorov-Smirnov by default, or Mann-Whitney U);
the warning fires when the p-value falls below ``alpha``, so on data exchangeable with the calibration data it
fires in about ``alpha`` of the batches (the false-alarm rate), and under a shift that moves the scores it fires
more often the larger the batch. Regressors with several outputs test each output and combine the p-values by
Bonferroni (``min(1, k * min p)``), which keeps the false-alarm rate at or below ``alpha``.

    drift = DriftTest.fit(1 - proba_cal.max(1), alpha=0.01)
    result = drift.check(1 - proba_batch.max(1))      # DriftResult(pvalue=..., warning=..., n=...)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TESTS = ("ks", "mannwhitney")


def classifier_scores(proba) -> np.ndarray:
    """The label-free conformity score of each row: 1 - its largest class probability."""
    return 1.0 - np.asarray(proba, dtype=float).max(axis=1)


@dataclass(frozen=True)
class DriftResult:
    pvalue: float  # of the two-sample test, batch scores against calibration scores (nan for an empty batch)
    warning: bool  # pvalue < alpha
    n: int  # rows in the batch
    alpha: float


@dataclass
class DriftTest:
    """The calibration rows' scores (one column per output) and the test that compares a batch with them."""

    reference: np.ndarray  # (n_cal, k)
    alpha: float = 0.01
    test: str = "ks"

    @classmethod
    def fit(cls, scores, alpha: float = 0.01, test: str = "ks") -> DriftTest:
        if test not in TESTS:
            raise ValueError(f"unknown drift test {test!r}; choose from {', '.join(TESTS)}")
        if not 0 < alpha < 1:
            raise ValueError(f"drift alpha must lie strictly between 0 and 1, got {alpha}")
        return cls(_columns(scores), float(alpha), test)

    def pvalue(self, scores) -> float:
        from scipy import stats

        batch = _columns(scores)
        if len(batch) == 0:
            return float("nan")
        if batch.shape[1] != self.reference.shape[1]:
            raise ValueError(f"scores have {batch.shape[1]} columns, the calibration scores {self.reference.shape[1]}")
        pvalues = []
        for j in range(batch.shape[1]):
            a, b = batch[:, j], self.reference[:, j]
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]  # missing targets (NaN) take no part
            if len(a) == 0 or len(b) == 0:
                continue
            if self.test == "ks":
                pvalues.append(stats.ks_2samp(a, b).pvalue)
            else:
                pvalues.append(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
        if not pvalues:
            return float("nan")
        return float(min(1.0, len(pvalues) * min(pvalues)))  # Bonferroni over outputs

    def check(self, scores) -> DriftResult:
        p = self.pvalue(scores)
        return DriftResult(p, bool(p < self.alpha), len(_columns(scores)), self.alpha)


def _columns(scores) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    return scores.reshape(len(scores), 1) if scores.ndim == 1 else scores
