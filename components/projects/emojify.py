"""emojify: sentence -> emoji with frozen GloVe embeddings, an averaged-embedding baseline and an LSTM [seed 003].

Real format: a CSV ``sentence,label`` (label = emoji index, 0-4 in the course) and a GloVe text file, both in
``data_dir``. Offline sample: 1200 template sentences over the course's five emoji (see data/emoji_csv.py) and
the real GloVe 6B 50d vectors of the 10,000 most frequent words plus every template word. The served model is
``model.arch`` (the LSTM by default); both arms train on the same split and are logged as child runs, so the
parent run compares them: accuracy overall and on the sentences with a negation, where averaging fails.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

from components.data.formats import emoji_csv, glove_text
from components.evaluation.plots import training_curves
from components.evaluation.report import ChildRun, Report, classification_report, served_classifier_metrics
from components.models.emojify import EmojiNetBuilder, build_emoji_model
from components.models.params import count_parameters
from components.projects.base import Project, Trained
from components.projects.settings.emojify import CAPABILITIES, EMOJI, ArmSettings, EmojiDataSettings, EmojifySettings
from components.serving.conformal import ServesConformal
from components.serving.inputs import as_text_list
from components.training.estimators import TorchTensorClassifier
from components.training.loop import fit, resolve_device
from components.training.tasks import ClassificationTask
from components.validation.expectations import ValidationReport


@dataclass
class EmojiData:
    vectors: torch.Tensor  # (1 + words, dim); row 0 is the padding
    index: dict[str, int]  # word -> row of ``vectors``
    classes: tuple[str, ...]
    max_words: int
    x: dict[str, torch.Tensor] = field(default_factory=dict)  # split -> (n, max_words) token ids
    y: dict[str, torch.Tensor] = field(default_factory=dict)
    sentences: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, np.ndarray] = field(default_factory=dict)  # split -> CSV row numbers (the sentences' ids)

    def dataset(self, split: str) -> TensorDataset:
        return TensorDataset(self.x[split], self.y[split])

    # The splits by the names the conformal stage reads (components/conformal/stage.py). Template sentences may
    # repeat, so the calibration/training overlap check compares CSV row numbers (ids), not token rows.
    def _split(self, name: str, what: dict):
        return what[name].numpy() if name in what and isinstance(what[name], torch.Tensor) else what.get(name)

    X_train = property(lambda self: self._split("train", self.x))
    y_train = property(lambda self: self._split("train", self.y))
    X_val = property(lambda self: self._split("val", self.x))
    y_val = property(lambda self: self._split("val", self.y))
    X_cal = property(lambda self: self._split("calibration", self.x))
    y_cal = property(lambda self: self._split("calibration", self.y))
    X_test = property(lambda self: self._split("test", self.x))
    y_test = property(lambda self: self._split("test", self.y))
    ids_train = property(lambda self: self.rows.get("train"))
    ids_val = property(lambda self: self.rows.get("val"))
    ids_cal = property(lambda self: self.rows.get("calibration"))

    def with_training(self, indices: np.ndarray) -> EmojiData:
        """A copy whose training split holds only ``indices`` of it (``train_on: selected``); the other splits
        stay as they are (components/active/stage.py's restrict_training)."""
        indices = np.asarray(indices, dtype=int)
        part = lambda what: {**what, "train": what["train"][indices]}  # noqa: E731
        sentences = {**self.sentences, "train": [self.sentences["train"][i] for i in indices]}
        return dataclasses.replace(self, x=part(self.x), y=part(self.y), sentences=sentences, rows=part(self.rows))


class TokenClassifier(ClassifierMixin, BaseEstimator):
    """A trained emoji net as the conformal stage sees a classifier: token-id rows -> probabilities (prefit)."""

    def __init__(self, model=None, n_classes: int = 5):
        self.model, self.n_classes = model, n_classes

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(self.n_classes)

    def fit(self, X=None, y=None):
        return self  # prefit: trained by Emojify.train

    def predict_proba(self, X) -> np.ndarray:
        return predict_proba(self.model, torch.as_tensor(np.asarray(X), dtype=torch.long))


@dataclass
class EmojiTrained(Trained):
    arms: dict[str, torch.nn.Module] = field(default_factory=dict)
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)


def encode(sentences, index: dict[str, int], max_words: int) -> torch.Tensor:
    """Token ids, right-padded with 0; words without a vector are skipped, as in the course."""
    out = torch.zeros((len(sentences), max_words), dtype=torch.long)
    for row, sentence in enumerate(sentences):
        ids = [index[w] for w in emoji_csv.tokenize(sentence) if w in index][:max_words]
        out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def has_negation(sentence: str) -> bool:
    return any(w in ("not", "n't", "no", "never") for w in emoji_csv.tokenize(sentence))


@torch.no_grad()
def predict_proba(model: torch.nn.Module, tokens: torch.Tensor, batch: int = 512) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    parts = [
        torch.softmax(model(tokens[i : i + batch].to(device)).float(), 1).cpu() for i in range(0, len(tokens), batch)
    ]
    return torch.cat(parts).numpy() if parts else np.zeros((0, model.out.out_features), dtype=np.float32)


class EmojiPredictor(ServesConformal):
    """Served model: a column ``sentence`` -> ``label`` (the emoji index), ``name``, ``emoji`` and ``p_<name>`` per
    emoji; with a conformal calibrator attached also ``prediction_set`` (emoji names), ``set_size`` and the drift
    warning (components/serving/conformal.py)."""

    def __init__(self, model: torch.nn.Module, index: dict[str, int], classes: tuple[str, ...], max_words: int):
        self.model, self.index, self.classes, self.max_words = model.cpu().eval(), index, tuple(classes), max_words

    def predict_frame(self, inputs) -> pd.DataFrame:
        sentences = as_text_list(inputs, "sentence")
        proba = predict_proba(self.model, encode(sentences, self.index, self.max_words))
        label = proba.argmax(1)
        frame = pd.DataFrame(
            {
                "sentence": sentences,
                "label": label.astype(np.int64),
                "name": [self.classes[i] for i in label],
                "emoji": [EMOJI.get(self.classes[i], "") for i in label],
            }
        )
        frame = pd.concat([frame, pd.DataFrame(proba, columns=[f"p_{c}" for c in self.classes])], axis=1)
        return self.add_sets(frame, proba, self.classes)


class Emojify(Project):
    name = "emojify"
    capabilities = CAPABILITIES
    summary = "Sentence -> emoji: averaged GloVe softmax baseline vs 2-layer LSTM on frozen GloVe (CSV sentence,label)"
    Settings = EmojifySettings

    def make_sample(self, out_dir: Path) -> dict:
        d = EmojiDataSettings()
        table = emoji_csv.generate_sentences(d.sample_per_class)
        emoji_csv.write_emoji_csv(Path(out_dir) / d.file, table)
        glove = glove_text.write_glove_sample(Path(out_dir) / d.glove_file, d.sample_words, emoji_csv.sample_words())
        return {"sentences": len(table), "glove_words": glove["words"]}

    def validate(self, settings: EmojifySettings) -> ValidationReport:
        d = settings.data
        glove_report, glove = glove_text.validate_glove(settings.data_dir / d.glove_file, d.dimension)
        report, _ = emoji_csv.validate_emoji_csv(
            settings.data_dir / d.file, d.classes, glove.index, d.min_rows, d.min_per_class
        )
        return ValidationReport(report.dataset, glove_report.outcomes + report.outcomes, report.rows)

    def prepare(self, settings: EmojifySettings) -> EmojiData:
        d = settings.data
        glove = glove_text.read_glove(settings.data_dir / d.glove_file, d.dimension)
        table = emoji_csv.read_emoji_csv(settings.data_dir / d.file)
        vectors = torch.cat([torch.zeros(1, glove.dim), torch.from_numpy(glove.vectors)])
        data = EmojiData(vectors, {w: i + 1 for i, w in enumerate(glove.words)}, d.classes, d.max_words)
        labels = table["label"].astype(int).to_numpy()
        rows = np.arange(len(table))
        rest, test = train_test_split(rows, test_size=settings.split.test, stratify=labels, random_state=settings.seed)
        val_share = settings.split.val / (1 - settings.split.test)
        train, val = train_test_split(rest, test_size=val_share, stratify=labels[rest], random_state=settings.seed)
        parts = {"train": train, "val": val, "test": test}
        conformal = settings.conformal
        if conformal is not None and conformal.calibrate_on == "validation":
            parts["calibration"] = val  # the nets only pick their best epoch by it (conformal.calibrate_on)
        elif conformal is not None:
            parts["train"], parts["calibration"] = train_test_split(
                train, test_size=conformal.calibration, stratify=labels[train], random_state=settings.seed
            )
        for split, idx in parts.items():
            sentences = table["sentence"].to_numpy()[np.sort(idx)].tolist()
            data.sentences[split] = sentences
            data.x[split] = encode(sentences, data.index, d.max_words)
            data.y[split] = torch.as_tensor(labels[np.sort(idx)], dtype=torch.long)
            data.rows[split] = np.sort(idx)
        return data

    def build(self, arch: str, data: EmojiData, settings: EmojifySettings) -> torch.nn.Module:
        m = settings.model
        torch.manual_seed(settings.seed)
        return build_emoji_model(arch, data.vectors, len(data.classes), m.hidden, m.layers, m.dropout)

    @staticmethod
    def arm_train(settings: EmojifySettings, arch: str):
        """The train section of one arch: its arm's epochs and learning rate where the arm sets them."""
        t, arm = settings.train, settings.arms.get(arch, ArmSettings())
        return t.model_copy(update={"epochs": arm.epochs or t.epochs, "lr": arm.lr or t.lr})

    def estimator(self, settings: EmojifySettings) -> TorchTensorClassifier:
        """The served arch as a scikit-learn classifier over token-id rows (``X_train``), on the same GloVe
        vectors and recipe as ``train``: what active learning's rounds clone and refit."""
        m, d = settings.model, settings.data
        glove = glove_text.read_glove(settings.data_dir / d.glove_file, d.dimension)
        vectors = torch.cat([torch.zeros(1, glove.dim), torch.from_numpy(glove.vectors)])
        return TorchTensorClassifier(
            EmojiNetBuilder(m.arch, vectors, m.hidden, m.layers, m.dropout),
            self.arm_train(settings, m.arch),
            device=settings.device,
            seed=settings.seed,
        )

    def train(self, data: EmojiData, settings: EmojifySettings, *, on_epoch, checkpoint_dir: Path) -> EmojiTrained:
        device = resolve_device(settings.device)
        arms = dict(settings.arms)
        arms.setdefault(settings.model.arch, ArmSettings())
        models, histories = {}, {}
        for arch in arms:
            config = self.arm_train(settings, arch)
            served = arch == settings.model.arch
            model = self.build(arch, data, settings)
            result = fit(
                model,
                ClassificationTask(),
                data.dataset("train"),
                data.dataset("val"),
                config,
                device,
                seed=settings.seed,
                on_epoch=on_epoch if served else None,
                checkpoint_dir=checkpoint_dir / arch if served else None,
                resume=True,
                progress=False,
            )
            models[arch], histories[arch] = model.cpu().eval(), pd.DataFrame(result.as_rows())
        served = settings.model.arch
        info = {
            "arch": served,
            "parameters": count_parameters(models[served], trainable_only=True),
            "vocabulary": len(data.index),
            **{f"{s}_size": len(v) for s, v in data.y.items()},
        }
        return EmojiTrained(models[served], histories[served], info, models, histories)

    def evaluate(self, trained: EmojiTrained, data: EmojiData, settings: EmojifySettings) -> Report:
        y = data.y["test"].numpy()
        classes = np.arange(len(data.classes))
        negated = np.array([has_negation(s) for s in data.sentences["test"]])
        served = settings.model.arch
        reports, predicted, children = {}, {}, []
        for arch, model in trained.arms.items():
            proba = predict_proba(model, data.x["test"])
            predicted[arch] = proba.argmax(1)
            reports[arch] = classification_report(y, proba, classes)
            correct = predicted[arch] == y
            reports[arch].metrics["negation_accuracy"] = (
                float(correct[negated].mean()) if negated.any() else float("nan")
            )
            axis = reports[arch].figures["confusion_matrix"].axes[0]
            axis.set_xticklabels(data.classes, rotation=45, ha="right")
            axis.set_yticklabels(data.classes)
            axis.set_title(f"{arch}: test accuracy {reports[arch].metrics['accuracy']:.3f}")
            axis.figure.tight_layout()
        evaluation = reports[served]
        for arch, report in reports.items():
            history = (
                trained.histories[arch].drop(columns=["seconds", "train_seconds"]).rename(columns={"epoch": "step"})
            )
            figures = {} if arch == served else {"confusion_matrix": report.figures["confusion_matrix"]}
            children.append(
                ChildRun(
                    f"model={arch}",
                    {"arch": arch, "served": arch == served},
                    {f"test_{k}": v for k, v in report.metrics.items()},
                    history,
                    figures,
                )
            )
        metrics = dict(evaluation.metrics)
        metrics["negation_sentences"] = float(negated.sum())
        for arch, report in reports.items():
            metrics[f"accuracy_{arch}"] = report.metrics["accuracy"]
            metrics[f"negation_accuracy_{arch}"] = report.metrics["negation_accuracy"]
        metrics["chance"] = float(np.bincount(y).max() / len(y))
        figures = {
            "confusion_matrix": evaluation.figures["confusion_matrix"],
            "training_curves": training_curves(trained.history),
        }
        table = pd.DataFrame(
            {
                "sentence": data.sentences["test"],
                "label": y,
                "negation": negated,
                **{f"predicted_{arch}": p for arch, p in predicted.items()},
            }
        )
        return Report(metrics, figures, {"history": trained.history, "test_predictions": table}, children)

    def conformal_model(self, trained: EmojiTrained) -> TokenClassifier:
        return TokenClassifier(trained.model, trained.model.out.out_features)

    def score(self, model, data: EmojiData, settings: EmojifySettings) -> dict[str, float]:
        frame = model.predict(pd.DataFrame({"sentence": data.sentences["test"]}))
        return served_classifier_metrics(frame, data.y["test"].numpy(), np.arange(len(data.classes)), data.classes)

    def predictor(self, trained: EmojiTrained, data: EmojiData, settings: EmojifySettings):
        example = pd.DataFrame({"sentence": ["i love you", "lets play baseball", "i am not happy", "i want pizza"]})
        return EmojiPredictor(trained.model, data.index, data.classes, data.max_words), example
