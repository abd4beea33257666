"""Query strategies: which pool items an active learner asks to have labelled next.

Each strategy is a modAL query strategy, ``strategy(learner, X_pool, n_instances) -> indices into X_pool``:

    random            the baseline: every pool item equally likely
    least_confident   modAL's uncertainty sampling: lowest top-class probability
    margin            modAL's margin sampling: smallest gap between the two most likely classes
    entropy           modAL's entropy sampling: highest entropy of the predicted distribution
    bald              Bayesian Active Learning by Disagreement (Houlsby et al. 2011, Gal et al. 2017): the mutual
                      information between the prediction and the weights, estimated from T MC-dropout passes
    power_bald        BALD for batches (Kirsch et al. 2023, stochastic batch acquisition): draws the batch without
                      replacement with probability proportional to the BALD score, instead of its top k
    variation_ratios  1 - (votes for the modal class) / T over T MC-dropout passes
    max_entropy       Gal et al.'s Max Entropy: entropy of the MC-dropout predictive (the mean of T passes)
    mc_margin         margin sampling on the MC-dropout predictive: smallest gap between its two most likely
                      classes (margin on the Bayesian model average rather than on one deterministic pass)
    power_mc_margin   mc_margin for batches, as power_bald is BALD for batches (Kirsch et al. 2023): draws the
                      batch without replacement with probability proportional to 1 - that margin
    batchbald         BatchBALD (Kirsch et al. 2019): the batch is built greedily to maximise the mutual
                      information between the weights and the batch's labels jointly, so a point that tells the
                      model what an earlier pick already told it scores low (top-k BALD takes both)

The Bayesian ones (``BAYESIAN``) need an estimator with ``predict_proba_samples(X, n_samples)`` (MC dropout, shape
(T, N, classes)), as ``TorchImageClassifier`` has. Imports numpy and modAL only, so benchmarks can carry it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from modAL.uncertainty import entropy_sampling, margin_sampling, uncertainty_sampling

EPS = 1e-12


def predictive_entropy(proba: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of (..., classes) probabilities."""
    return -(proba * np.log(proba + EPS)).sum(axis=-1)


def bald_scores(samples: np.ndarray) -> np.ndarray:
    """Mutual information from (T, N, classes) MC samples: H[mean p] - mean H[p].

    High where the passes disagree with each other, zero where they agree, even on a uniform prediction
    (that is aleatoric noise, which more labels would not remove).
    """
    return predictive_entropy(samples.mean(axis=0)) - predictive_entropy(samples).mean(axis=0)


def variation_ratio_scores(samples: np.ndarray) -> np.ndarray:
    """1 - (share of the T passes that vote for the most voted class), from (T, N, classes) samples."""
    votes = samples.argmax(axis=-1)  # (T, N)
    n_classes = samples.shape[-1]
    counts = np.stack([(votes == c).sum(axis=0) for c in range(n_classes)], axis=-1)  # (N, classes)
    return 1.0 - counts.max(axis=-1) / samples.shape[0]


def mc_margin_scores(samples: np.ndarray) -> np.ndarray:
    """Gap between the two most likely classes of the mean of (T, N, classes) samples; small = ambiguous."""
    top2 = np.sort(samples.mean(axis=0), axis=-1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def top_k(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the k highest scores; ties are broken at random (variation ratios has many ties)."""
    if k > len(scores):
        raise ValueError(f"asked for {k} items but the pool holds only {len(scores)}")
    order = rng.permutation(len(scores))
    return order[np.argsort(-scores[order], kind="stable")[:k]]


def power_top_k(scores: np.ndarray, k: int, rng: np.random.Generator, beta: float = 1.0) -> np.ndarray:
    """k indices drawn without replacement with probability proportional to ``scores ** beta`` (Gumbel top-k).

    The top k of one BALD ranking are near-duplicates: points the model is unsure about for the same reason.
    Sampling in proportion to the score keeps most of the informative points and spreads the batch, which
    matches BatchBALD at a fraction of its cost (Kirsch et al. 2023).
    """
    if k > len(scores):
        raise ValueError(f"asked for {k} items but the pool holds only {len(scores)}")
    keys = beta * np.log(np.clip(scores, EPS, None)) + rng.gumbel(size=len(scores))
    return np.argsort(-keys, kind="stable")[:k]


def batchbald_select(
    samples: np.ndarray, k: int, rng: np.random.Generator, configurations: int = 1000, chunk: int = 2000
) -> np.ndarray:
    """k indices chosen greedily by BatchBALD from (T, N, classes) MC samples.

    Pick i maximises I(y_1..y_i; w) = H(y_1..y_i) - sum_j E_w H(y_j | w) over the candidates for y_i. Given the
    labels ``s`` of the earlier picks, the weights' posterior over the T passes is w_t(s) proportional to
    prod_j p_t(y_j = s_j), and H(y_1..y_i) = H(y_1..y_(i-1)) + E_s H(sum_t w_t(s) p_t(y_i)), so a candidate's
    score is the mean over configurations s of the entropy of its predictive under w(s), less its mean
    per-pass entropy. With no picks w is uniform and the score is BALD's. Configurations are enumerated while
    there are at most ``configurations`` of them (classes ** picks), then that many are drawn from the MC
    predictive (a pass, then each pick's label from that pass), as Kirsch et al. do.
    """
    T, N, C = samples.shape
    if k > N:
        raise ValueError(f"asked for {k} items but the pool holds only {N}")
    p = np.clip(samples.astype(np.float32), EPS, None)
    log_p = np.log(p)  # (T, N, C)
    conditional = predictive_entropy(p).mean(axis=0)  # E_w H(y_n | w), (N,)
    log_joint = np.zeros((T, 1), dtype=np.float32)  # log prod_j p_t(s_j) for each configuration s
    weight = np.ones(1, dtype=np.float32)  # each configuration's probability (exact) or 1/M (drawn)
    drawn_pass = None  # the pass each drawn configuration came from, once they are drawn
    picked: list[int] = []
    for _ in range(k):
        w = np.exp(log_joint - log_joint.max(axis=0))
        w /= w.sum(axis=0)  # (T, S): posterior over the passes given each configuration
        scores = np.empty(N, dtype=np.float64)
        for lo in range(0, N, chunk):
            q = np.einsum("ts,tnc->snc", w, p[:, lo : lo + chunk], optimize=True)  # (S, n, C)
            scores[lo : lo + chunk] = weight @ predictive_entropy(q) - conditional[lo : lo + chunk]
        scores[picked] = -np.inf
        order = rng.permutation(N)  # ties (many on a confident pool) broken at random, as top_k does
        best = int(order[np.argmax(scores[order])])
        picked.append(best)
        S = log_joint.shape[1]
        if drawn_pass is None and S * C <= configurations:  # enumerate: every configuration times every label
            log_joint = (log_joint[:, :, None] + log_p[:, best, None, :]).reshape(T, S * C)
            prob = np.exp(log_joint).mean(axis=0)
            weight = (prob / prob.sum()).astype(np.float32)
        else:
            if drawn_pass is None:  # from here on, draw: a pass for each configuration, then its labels
                drawn_pass = rng.integers(T, size=configurations)
                log_joint = np.zeros((T, configurations), dtype=np.float32)
                for j in picked[:-1]:
                    log_joint += log_p[:, j][:, _draw(p[drawn_pass, j], rng)]
                weight = np.full(configurations, 1.0 / configurations, dtype=np.float32)
            log_joint = log_joint + log_p[:, best][:, _draw(p[drawn_pass, best], rng)]
    return np.asarray(picked)


def _draw(proba: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One class per row of (M, classes) probabilities."""
    cdf = np.cumsum(proba, axis=1)
    return np.minimum((rng.random((len(proba), 1)) * cdf[:, -1:] > cdf).sum(axis=1), proba.shape[1] - 1)


def random_sampling(learner, X_pool, n_instances: int = 1, *, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(len(X_pool), size=n_instances, replace=False)


def bald_sampling(
    learner, X_pool, n_instances: int = 1, *, n_samples: int = 20, rng: np.random.Generator
) -> np.ndarray:
    return top_k(bald_scores(learner.estimator.predict_proba_samples(X_pool, n_samples)), n_instances, rng)


def power_bald_sampling(
    learner, X_pool, n_instances: int = 1, *, n_samples: int = 20, rng: np.random.Generator
) -> np.ndarray:
    return power_top_k(bald_scores(learner.estimator.predict_proba_samples(X_pool, n_samples)), n_instances, rng)


def variation_ratio_sampling(
    learner, X_pool, n_instances: int = 1, *, n_samples: int = 20, rng: np.random.Generator
) -> np.ndarray:
    return top_k(variation_ratio_scores(learner.estimator.predict_proba_samples(X_pool, n_samples)), n_instances, rng)


def max_entropy_sampling(
    learner, X_pool, n_instances: int = 1, *, n_samples: int = 20, rng: np.random.Generator
) -> np.ndarray:
    mean = learner.estimator.predict_proba_samples(X_pool, n_samples).mean(axis=0)
    return top_k(predictive_entropy(mean), n_instances, rng)


def mc_margin_sampling(
    learner, X_pool, n_instances: int = 1, *, n_samples: int = 20, rng: np.random.Generator
) -> np.ndarray:
    return top_k(-mc_margin_scores(learner.estimator.predict_proba_samples(X_pool, n_samples)), n_instances, rng)


def power_mc_margin_sampling(
    learner, X_pool, n_instances: int = 1, *, n_samples: int = 20, rng: np.random.Generator
) -> np.ndarray:
    """1 - margin is 0 where the MC predictive is sure of one class and 1 where its top two classes tie."""
    margin = mc_margin_scores(learner.estimator.predict_proba_samples(X_pool, n_samples))
    return power_top_k(1.0 - margin, n_instances, rng)


def batchbald_sampling(
    learner, X_pool, n_instances: int = 1, *, n_samples: int = 20, rng: np.random.Generator, configurations: int = 1000
) -> np.ndarray:
    samples = learner.estimator.predict_proba_samples(X_pool, n_samples)
    return batchbald_select(samples, n_instances, rng, configurations)


STRATEGIES = (
    "random",
    "least_confident",
    "margin",
    "entropy",
    "bald",
    "power_bald",
    "variation_ratios",
    "max_entropy",
    "mc_margin",
    "power_mc_margin",
    "batchbald",
)
BAYESIAN = ("bald", "power_bald", "variation_ratios", "max_entropy", "mc_margin", "power_mc_margin", "batchbald")


def make_strategy(name: str, *, n_samples: int = 20, seed: int = 0) -> Callable:
    """The query function for ``name``, with its MC passes and its seeded generator bound in."""
    rng = np.random.default_rng(seed)
    strategies = {
        "random": partial(random_sampling, rng=rng),
        "least_confident": uncertainty_sampling,
        "margin": margin_sampling,
        "entropy": entropy_sampling,
        "bald": partial(bald_sampling, n_samples=n_samples, rng=rng),
        "power_bald": partial(power_bald_sampling, n_samples=n_samples, rng=rng),
        "variation_ratios": partial(variation_ratio_sampling, n_samples=n_samples, rng=rng),
        "max_entropy": partial(max_entropy_sampling, n_samples=n_samples, rng=rng),
        "mc_margin": partial(mc_margin_sampling, n_samples=n_samples, rng=rng),
        "power_mc_margin": partial(power_mc_margin_sampling, n_samples=n_samples, rng=rng),
        "batchbald": partial(batchbald_sampling, n_samples=n_samples, rng=rng),
    }
    try:
        return strategies[name]
    except KeyError:
        raise ValueError(f"unknown query strategy {name!r}; known: {', '.join(STRATEGIES)}") from None
