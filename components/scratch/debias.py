"""Word-vector geometry in NumPy: cosine similarity, analogies, a bias direction, neutralize and equalize.

Following Bolukbasi et al. 2016, "Man is to Computer Programmer as Woman is to Homemaker?": the gender
direction g is the difference of a definitional pair (woman - man) or the first principal component of several
pairs, each centred on its own mean. Neutralize removes a word's component along g; equalize moves a pair
(actor/actress) so that both are equally far from every neutralized word and differ only along g. Vectors are
unit length throughout, as in the paper, so that a projection on g is a cosine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def cosine_similarity(u: np.ndarray, v: np.ndarray) -> float:
    norm = float(np.linalg.norm(u) * np.linalg.norm(v))
    return 0.0 if norm == 0 else float(np.dot(u, v) / norm)


def unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def analogy_answers(vectors: np.ndarray, questions: np.ndarray, chunk: int = 512) -> np.ndarray:
    """For rows (a, b, c) of word indices, the index of d in a:b :: c:d, the word whose vector is closest (by
    cosine) to b - a + c, other than a, b and c. ``vectors`` are unit length."""
    answers = np.empty(len(questions), dtype=np.int64)
    for start in range(0, len(questions), chunk):
        q = questions[start : start + chunk]
        target = unit(vectors[q[:, 1]] - vectors[q[:, 0]] + vectors[q[:, 2]])
        scores = target @ vectors.T
        scores[np.arange(len(q))[:, None], q] = -np.inf  # the question's own words are not answers
        answers[start : start + chunk] = scores.argmax(1)
    return answers


def bias_direction(vectors: np.ndarray, pairs: np.ndarray, method: str = "pca") -> tuple[np.ndarray, float]:
    """The unit bias direction from rows (i, j) of word-index pairs (man, woman), pointing from i to j, and the
    share of the pairs' variance it explains. "difference": the first pair's difference (the course's
    g = e_woman - e_man). "pca": the top principal component of the pair vectors centred on each pair's mean."""
    first, second = vectors[pairs[:, 0]], vectors[pairs[:, 1]]
    if method == "difference":
        return unit(second[0] - first[0]), 1.0
    if method != "pca":
        raise ValueError(f"unknown bias-direction method {method!r}; expected 'difference' or 'pca'")
    centre = (first + second) / 2
    deviations = np.concatenate([first - centre, second - centre])
    _, s, vt = np.linalg.svd(deviations, full_matrices=False)
    g = vt[0]
    if np.dot(second - first, g).sum() < 0:  # SVD's sign is arbitrary: point towards the pairs' second words
        g = -g
    return unit(g), float(s[0] ** 2 / np.sum(s**2))


def neutralize(e: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``e`` without its component along ``g`` (rows of a matrix, or one vector); then back to unit length."""
    g = unit(g)
    return unit(e - np.outer(e @ g, g).reshape(e.shape))


def equalize(e1: np.ndarray, e2: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bolukbasi's equalize for a pair of unit vectors: both get the pair mean's part orthogonal to g, plus
    opposite, equal-sized parts along g, so they stay unit length and mirror each other across the
    neutral subspace."""
    g = unit(g)
    mu = (e1 + e2) / 2
    mu_orth = mu - np.dot(mu, g) * g
    scale = np.sqrt(max(0.0, 1 - float(np.dot(mu_orth, mu_orth))))
    out = []
    for e in (e1, e2):
        along = (np.dot(e, g) - np.dot(mu, g)) * g
        out.append(mu_orth + scale * along / max(float(np.linalg.norm(along)), 1e-12))
    return out[0], out[1]


@dataclass
class HardDebias:
    """The result of debiasing: the unit vectors after neutralize and equalize, and the direction used."""

    vectors: np.ndarray  # (n_words, dim), unit length
    direction: np.ndarray  # g, unit length
    explained_variance: float
    neutralized: np.ndarray  # bool per word


def hard_debias(
    vectors: np.ndarray,
    definitional: np.ndarray,
    equalize_pairs: np.ndarray,
    gender_specific: np.ndarray,
    method: str = "pca",
) -> HardDebias:
    """Neutralize every word that is not gender specific (by definition, like "she" or "actress"), then
    equalize each pair. Indices are rows of ``vectors`` (unit length)."""
    g, explained = bias_direction(vectors, definitional, method)
    out = vectors.copy()
    neutral = np.ones(len(vectors), dtype=bool)
    neutral[gender_specific] = False
    neutral[equalize_pairs.ravel()] = False
    out[neutral] = neutralize(vectors[neutral], g)
    for i, j in equalize_pairs:
        out[i], out[j] = equalize(vectors[i], vectors[j], g)
    return HardDebias(out.astype(np.float32), g.astype(np.float32), explained, neutral)
