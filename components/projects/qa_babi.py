"""qa-babi: extractive question answering on the bAbI tasks with a from-scratch Transformer encoder [seed 003].

Real format: the bAbI task files (``<task>_train.txt`` and ``<task>_test.txt`` in ``data_dir``; see
data/babi.py). Offline sample: tasks 1 and 2 generated in that format. One model reads ``question <sep>
story`` for every task and points at the story word that answers (a start-position head), so an answer is
always a word of the story. It trains on the train files (a share held out for early stopping) and is measured
on the test files: answer accuracy per task, against answering the most frequent training answer every time.
Figures: training curves and the pointer distribution over one test story.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

from components.data.formats import babi
from components.data.splits import random_split
from components.data.vocab import Vocab, tokenize
from components.evaluation.plots import training_curves
from components.evaluation.report import Report
from components.models.token_encoder import PointerReader
from components.projects.base import Project, Trained, train_torch
from components.projects.settings.qa_babi import CAPABILITIES, BabiDataSettings, QaBabiSettings
from components.serving.inputs import as_frame
from components.serving.predictor import Predictor
from components.training.tasks import ClassificationTask
from components.validation.expectations import ValidationReport

# --- encoding --------------------------------------------------------------------------------------------------


def split_sentences(story: str) -> list[str]:
    """A served story as one text: sentences end at . ! ? or a line break."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", story) if s.strip()]


# Words that say what kind of question it is, not whom it is about: they do not mark a sentence as relevant.
QUESTION_WORDS = frozenset(
    "where what who whom which when why how is are was were did does do the a an to of in ? .".split()
)


def encode_example(story: list[str], question: str, vocab: Vocab, max_sentences: int):
    """(token ids, sentences-ago per token, match per token, the story words with their token positions) for
    one question. match = 1 if the word occurs in the question + 2 if its sentence holds such a word (DrQA's
    exact-match feature, per word and per sentence): the pointer's softmax over "latest sentence about the
    asked person" is then a comparison the head can learn directly."""
    story, asked = story[-max_sentences:], set(tokenize(question, "word")) - QUESTION_WORDS
    ids, words = vocab.encode(question, eos=True), []
    ago, match = [-1] * len(ids), [0] * len(ids)
    for k, sentence in enumerate(story):
        sentence_words = tokenize(sentence, "word")
        mentioned = 2 * any(w in asked for w in sentence_words)
        for word in sentence_words:
            words.append((len(ids), word))
            ids.append(vocab.index.get(word, vocab.unk_id))
            ago.append(len(story) - 1 - k)
            match.append(int(word in asked) + mentioned)
    return ids, ago, match, words


def answer_position(q: babi.Question, words, max_sentences: int) -> int:
    """Token position of the answer: in the latest supporting fact that holds it, else its last occurrence."""
    answer = q.answer.lower()
    kept = q.story_ids[-max_sentences:]
    starts, position = {}, 0
    for sid, sentence in zip(kept, q.story[-max_sentences:]):
        starts[sid] = (position, position + len(tokenize(sentence, "word")))
        position += len(tokenize(sentence, "word"))
    for sid in sorted((s for s in q.supporting if s in starts), reverse=True):
        lo, hi = starts[sid]
        hits = [p for i, (p, w) in enumerate(words) if lo <= i < hi and w == answer]
        if hits:
            return hits[-1]
    hits = [p for p, w in words if w == answer]
    return hits[-1] if hits else -1


def encode_batch(rows, vocab: Vocab, max_sentences: int, length: int | None = None):
    """rows of (story sentences, question) -> x (n, 3, L) and each row's story words."""
    encoded = [encode_example(s, q, vocab, max_sentences) for s, q in rows]
    length = length or max((len(e[0]) for e in encoded), default=1)
    x = torch.zeros((len(encoded), 3, length), dtype=torch.long)
    x[:, 1] = -1
    for i, (ids, ago, match, _) in enumerate(encoded):
        n = min(len(ids), length)
        x[i, :, :n] = torch.tensor([ids[:n], ago[:n], match[:n]])
    return x, [e[-1] for e in encoded]


@torch.no_grad()
def pointer_probs(model: torch.nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    parts = [model(x[i : i + batch].to(device)).float().softmax(-1).cpu() for i in range(0, len(x), batch)]
    return torch.cat(parts) if parts else torch.zeros((0, x.shape[-1]))


def answers_from(probs: torch.Tensor, words) -> list[str]:
    best = probs.argmax(-1).tolist()
    return [dict(w).get(b, "") for b, w in zip(best, words)]


# --- data ------------------------------------------------------------------------------------------------------


@dataclass
class BabiData:
    vocab: Vocab
    max_sentences: int
    questions: dict[str, list[babi.Question]] = field(default_factory=dict)  # split -> questions
    x: dict[str, torch.Tensor] = field(default_factory=dict)
    y: dict[str, torch.Tensor] = field(default_factory=dict)  # answer token positions
    words: dict[str, list] = field(default_factory=dict)

    def dataset(self, split: str) -> TensorDataset:
        return TensorDataset(self.x[split], self.y[split])

    def frame(self, split: str) -> pd.DataFrame:
        qs = self.questions[split]
        return pd.DataFrame({"story": [" ".join(q.story) for q in qs], "question": [q.question for q in qs]})


class BabiPredictor(Predictor):
    """Served model: columns ``story`` (the statements as one text) and ``question`` -> ``answer`` (a story word)
    and ``confidence`` (its pointer probability)."""

    def __init__(self, model: torch.nn.Module, vocab: Vocab, max_sentences: int):
        self.model, self.vocab, self.max_sentences = model.cpu().eval(), vocab, max_sentences

    def predict_frame(self, inputs) -> pd.DataFrame:
        inputs = as_frame(inputs, {"story": "the statements as one text", "question": "text"})
        rows = [(split_sentences(str(s)), str(q)) for s, q in zip(inputs["story"], inputs["question"])]
        x, words = encode_batch(rows, self.vocab, self.max_sentences)
        probs = pointer_probs(self.model, x)
        return pd.DataFrame({"answer": answers_from(probs, words), "confidence": probs.max(-1).values.numpy()})


def accuracies(predicted, questions: list[babi.Question]) -> dict[str, float]:
    correct = np.array([p == q.answer.lower() for p, q in zip(predicted, questions)])
    tasks = np.array([babi.short_name(q.task) for q in questions])
    out = {"accuracy": float(correct.mean()) if len(correct) else float("nan")}
    out |= {f"accuracy_{t}": float(correct[tasks == t].mean()) for t in dict.fromkeys(tasks)}
    return out


class QaBabi(Project):
    name = "qa-babi"
    capabilities = CAPABILITIES
    summary = "Extractive QA on bAbI tasks: a from-scratch Transformer encoder points at the answering story word"
    Settings = QaBabiSettings

    def make_sample(self, out_dir: Path) -> dict:
        return babi.write_sample(out_dir, BabiDataSettings().sample_stories)

    def validate(self, settings: QaBabiSettings) -> ValidationReport:
        outcomes, rows = [], 0
        for task in settings.data.tasks:
            for split in ("train", "test"):
                report, _ = babi.validate_babi(
                    babi.task_file(settings.data_dir, task, split), settings.data.min_questions
                )
                outcomes += report.outcomes
                rows += report.rows
        return ValidationReport(str(settings.data_dir), outcomes, rows)

    def prepare(self, settings: QaBabiSettings) -> BabiData:
        d = settings.data
        train, test = [], []
        for task in d.tasks:
            train += babi.read_task(settings.data_dir, task, "train")
            test += babi.read_task(settings.data_dir, task, "test")
        split = random_split(len(train), {"val": d.val}, settings.seed)
        splits = {"train": [train[i] for i in split["train"]], "val": [train[i] for i in split["val"]], "test": test}
        texts = [s for q in splits["train"] for s in (*q.story[-d.max_story_sentences :], q.question)]
        data = BabiData(Vocab.build(texts, "word"), d.max_story_sentences)
        for split, qs in splits.items():
            x, words = encode_batch([(list(q.story), q.question) for q in qs], data.vocab, d.max_story_sentences)
            y = torch.tensor([answer_position(q, w, d.max_story_sentences) for q, w in zip(qs, words)])
            if split != "test":  # an answer dropped with old sentences cannot be pointed at: nothing to learn
                keep = y >= 0
                qs, x, y = [q for q, k in zip(qs, keep) if k], x[keep], y[keep]
                words = [w for w, k in zip(words, keep) if k]
            data.questions[split], data.x[split], data.y[split], data.words[split] = qs, x, y.clamp(min=0), words
        return data

    def build(self, data: BabiData, settings: QaBabiSettings) -> PointerReader:
        m = settings.model
        torch.manual_seed(settings.seed)
        longest = max(x.shape[-1] for x in data.x.values())
        return PointerReader(
            len(data.vocab),
            m.d_model,
            m.heads,
            m.layers,
            m.d_ff,
            m.dropout,
            max_len=max(512, longest),
            max_sentences=data.max_sentences,
            pad_id=data.vocab.pad_id,
        )

    def train(self, data: BabiData, settings: QaBabiSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        model = self.build(data, settings)
        return train_torch(
            model,
            ClassificationTask(),
            data.dataset("train"),
            data.dataset("val"),
            settings,
            on_epoch=on_epoch,
            checkpoint_dir=checkpoint_dir,
            vocabulary=len(data.vocab),
            **{f"{s}_size": len(v) for s, v in data.y.items()},
        )

    def evaluate(self, trained: Trained, data: BabiData, settings: QaBabiSettings) -> Report:
        questions = data.questions["test"]
        probs = pointer_probs(trained.model, data.x["test"])
        predicted = answers_from(probs, data.words["test"])
        metrics = accuracies(predicted, questions)
        common = Counter(q.answer.lower() for q in data.questions["train"]).most_common(1)[0][0]
        metrics |= {f"baseline_{k}": v for k, v in accuracies([common] * len(questions), questions).items()}
        metrics["test_questions"] = float(len(questions))
        figures = {
            "training_curves": training_curves(trained.history),
            "pointer_distribution": pointer_figure(probs, data, predicted),
        }
        table = pd.DataFrame(
            {
                "task": [babi.short_name(q.task) for q in questions],
                "line": [q.line for q in questions],
                "question": [q.question for q in questions],
                "answer": [q.answer for q in questions],
                "predicted": predicted,
            }
        )
        return Report(metrics, figures, {"history": trained.history, "test_predictions": table})

    def score(self, model, data: BabiData, settings: QaBabiSettings) -> dict[str, float]:
        return accuracies(model.predict(data.frame("test"))["answer"].tolist(), data.questions["test"])

    def predictor(self, trained: Trained, data: BabiData, settings: QaBabiSettings):
        example = pd.DataFrame(
            {
                "story": [
                    "Mary moved to the bathroom. John went to the hallway.",
                    "Sandra picked up the milk. Sandra went to the garden.",
                ],
                "question": ["Where is Mary?", "Where is the milk?"],
            }
        )
        return BabiPredictor(trained.model, data.vocab, data.max_sentences), example


def pointer_figure(probs: torch.Tensor, data: BabiData, predicted: list[str]) -> plt.Figure:
    """Where the model points in the last (hardest: longest-story) test question of the last task."""
    questions = data.questions["test"]
    i = max(range(len(questions)), key=lambda j: (questions[j].task, min(len(questions[j].story), 12)))
    positions, words = zip(*data.words["test"][i][-60:]) if data.words["test"][i] else ((), ())
    fig, ax = plt.subplots(figsize=(max(6, 0.22 * len(words)), 3.2))
    ax.bar(range(len(words)), probs[i, list(positions)].numpy())
    ax.set_xticks(range(len(words)), words, rotation=90, fontsize=7)
    q = questions[i]
    ax.set(
        ylabel="pointer probability",
        title=f"{q.question} answer {q.answer!r}, predicted {predicted[i]!r} ({babi.short_name(q.task)})",
    )
    fig.tight_layout()
    return fig
