"""nmt-dates: neural machine translation of human-readable dates into ISO dates, with attention [seed 003].

"3 May 1979", "tuesday 10 july 2007", "5/30/68" -> "1979-05-03", "2007-07-10", "1968-05-30". A character-level
bidirectional LSTM encoder, an LSTM decoder that attends over the input characters for each of the 10 output
characters (``components/models/date_attention.py``). Real format: a CSV/TSV of ``human,machine`` pairs;
offline sample: 10,000 pairs generated from ``datetime`` in 27 formats. Judged by exact match (the whole date
right) against the most-common-date baseline, per-character accuracy, and attention maps that show which
input characters each output character read.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

from components.data.formats import date_pairs
from components.data.splits import random_split
from components.evaluation.plots import Panel, training_curves
from components.evaluation.report import Report
from components.models.date_attention import PAD, DateTranslator
from components.projects.base import Project, Trained, train_torch
from components.projects.settings.nmt_dates import CAPABILITIES, DatePairsDataSettings, NmtDatesSettings
from components.serving.inputs import as_text_list
from components.serving.predictor import Predictor
from components.training.loop import resolve_device
from components.training.tasks import ClassificationTask
from components.validation.expectations import ValidationReport

ISO_CHARS = "0123456789-"
ISO_LENGTH = 10  # YYYY-MM-DD


@dataclass(frozen=True)
class CharCodec:
    """Strings <-> id tensors. Input id 0 pads, 1 stands for a character outside the alphabet."""

    alphabet: str
    length: int  # Tx

    def encode(self, texts: list[str]) -> torch.Tensor:
        index = {c: i + 2 for i, c in enumerate(self.alphabet)}
        ids = torch.full((len(texts), self.length), PAD, dtype=torch.long)
        for row, text in enumerate(texts):
            chars = [index.get(c, 1) for c in date_pairs.normalize(text)[: self.length]]
            ids[row, : len(chars)] = torch.tensor(chars, dtype=torch.long)
        return ids

    @property
    def vocabulary(self) -> int:
        return len(self.alphabet) + 2


def encode_targets(dates: list[str]) -> torch.Tensor:
    return torch.tensor([[ISO_CHARS.index(c) for c in d] for d in dates], dtype=torch.long)


def decode_targets(ids: np.ndarray) -> list[str]:
    return ["".join(ISO_CHARS[i] for i in row) for row in ids]


@dataclass
class DateSplits:
    train: pd.DataFrame  # columns line, human (normalized), machine
    val: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


@dataclass
class Translation:
    machine: list[str]
    score: np.ndarray  # probability of the whole predicted date (the decoder's characters are independent given x)
    char_ids: np.ndarray  # (N, Ty)
    attention: np.ndarray  # (N, Ty, Tx)


@torch.no_grad()
def translate(model: DateTranslator, codec: CharCodec, humans: list[str], batch_size: int = 512) -> Translation:
    model.eval()
    if not humans:
        return Translation(
            [], np.zeros(0), np.zeros((0, model.output_length), dtype=int), np.zeros((0, model.output_length, 0))
        )
    device = next(model.parameters()).device
    probs, weights = [], []
    for start in range(0, len(humans), batch_size):
        logits, alpha = model.translate(codec.encode(humans[start : start + batch_size]).to(device))
        probs.append(logits.float().softmax(-1).cpu())
        weights.append(alpha.float().cpu())
    p = torch.cat(probs)
    best, ids = p.max(-1)
    return Translation(
        decode_targets(ids.numpy()), best.log().sum(1).exp().numpy(), ids.numpy(), torch.cat(weights).numpy()
    )


def is_date(text: str) -> bool:
    try:
        return dt.date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def translation_metrics(predicted: list[str], truth: list[str]) -> dict[str, float]:
    pred, true = np.array([list(p) for p in predicted]), np.array([list(t) for t in truth])
    return {
        "exact_match": float(np.mean([p == t for p, t in zip(predicted, truth)])),
        "char_accuracy": float((pred == true).mean()),
        "valid_date_fraction": float(np.mean([is_date(p) for p in predicted])),
    }


def baseline_metrics(train: list[str], test: list[str]) -> dict[str, float]:
    """What needs no input: the most common training date, and the most common character at each position."""
    common = pd.Series(train).value_counts().index[0]
    per_position = "".join(pd.Series(list(col)).value_counts().index[0] for col in zip(*train))
    return {
        "baseline_exact_match": translation_metrics([common] * len(test), test)["exact_match"],
        "baseline_char_accuracy": translation_metrics([per_position] * len(test), test)["char_accuracy"],
    }


TRAINING_CURVES = (
    Panel({"train_loss": "train", "val_loss": "validation"}, "cross-entropy per character", "Loss", yscale="log"),
    Panel(
        {"val_char_accuracy": "per character", "val_exact_match": "exact match (whole date)"},
        "validation accuracy",
        "Accuracy",
        ylim=(0, 1.02),
        legend={"loc": "lower right"},
    ),
)


def attention_figure(humans: list[str], result: Translation) -> plt.Figure:
    """One heat map per example: output characters (rows) against the input characters they attended to."""
    n = len(humans)
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.2 * n), squeeze=False)
    for ax, human, machine, alpha in zip(axes[:, 0], humans, result.machine, result.attention):
        width = max(1, len(human))
        ax.imshow(alpha[:, :width], cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(width), list(human))
        ax.set_yticks(range(len(machine)), list(machine))
        ax.set_title(f"{human!r} -> {machine}", fontsize=9)
    fig.tight_layout()
    return fig


@contextmanager
def cpu_threads(n: int):
    """Torch's intra-op threads for a block. The net's steps are tiny (a 64-unit LSTM cell, ten times per
    batch): on a CPU, threads spend more time synchronising than computing (measured: 1 thread 6x faster
    than 2 on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class DatePredictor(Predictor):
    """Served model: a column ``human`` (strings) -> ``machine``, the ISO date, and ``score``, the model's
    probability of that whole date. Any character outside the alphabet reads as unknown; longer inputs are cut
    to Tx characters."""

    def __init__(self, model: DateTranslator, codec: CharCodec):
        self.model, self.codec = model.cpu().eval(), codec

    def predict_frame(self, inputs) -> pd.DataFrame:
        humans = as_text_list(inputs, "human")
        result = translate(self.model, self.codec, humans)
        return pd.DataFrame({"human": humans, "machine": result.machine, "score": result.score})


class NmtDates(Project):
    name = "nmt-dates"
    capabilities = CAPABILITIES
    summary = "Seq2seq BiLSTM + attention: human-readable dates -> ISO (CSV human,machine); exact match, attention maps"
    primary_metric = "exact_match"
    Settings = NmtDatesSettings

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        return date_pairs.generate(out_dir, DatePairsDataSettings().file, **({"n": 1000} if tiny else {}))

    def rules(self, settings: NmtDatesSettings) -> date_pairs.PairRules:
        d = settings.data
        return date_pairs.PairRules(d.alphabet, d.max_input_length, d.min_pairs)

    def codec(self, settings: NmtDatesSettings) -> CharCodec:
        return CharCodec(settings.data.alphabet, settings.data.max_input_length)

    def validate(self, settings: NmtDatesSettings) -> ValidationReport:
        return date_pairs.validate_pairs(settings.data_dir / settings.data.file, self.rules(settings))[0]

    def prepare(self, settings: NmtDatesSettings) -> DateSplits:
        table = date_pairs.read_pairs(settings.data_dir / settings.data.file)[["line", *date_pairs.COLUMNS]]
        table["human"] = table["human"].map(date_pairs.normalize)
        split = random_split(len(table), {"test": settings.split.test, "val": settings.split.val}, settings.seed)
        pick = lambda part: table.iloc[split[part]].reset_index(drop=True)  # noqa: E731
        return DateSplits(pick("train"), pick("val"), pick("test"))

    def network(self, settings: NmtDatesSettings) -> DateTranslator:
        m = settings.model
        torch.manual_seed(settings.seed)
        return DateTranslator(
            self.codec(settings).vocabulary, len(ISO_CHARS), ISO_LENGTH, m.embedding, m.encoder, m.decoder, m.attention
        )

    def train(self, data: DateSplits, settings: NmtDatesSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        codec, t = self.codec(settings), settings.train
        tensors = lambda split: TensorDataset(
            codec.encode(split["human"].tolist()),  # noqa: E731
            encode_targets(split["machine"].tolist()),
        )
        model = self.network(settings)
        val_humans, val_machines = data.val["human"].tolist(), data.val["machine"].tolist()

        def exact_match(m) -> dict[str, float]:
            return {
                "val_exact_match": translation_metrics(translate(m, codec, val_humans).machine, val_machines)[
                    "exact_match"
                ]
            }

        # targets are (B, Ty): the task's accuracy counts characters
        task = ClassificationTask(accuracy_name="val_char_accuracy", extra_metrics=exact_match)
        device = resolve_device(settings.device)
        with cpu_threads(1 if device.type == "cpu" else torch.get_num_threads()):
            return train_torch(
                model,
                task,
                tensors(data.train),
                tensors(data.val),
                settings,
                on_epoch=on_epoch,
                checkpoint_dir=checkpoint_dir,
                train_settings=t,
                **data.sizes(),
            )

    def evaluate(self, trained: Trained, data: DateSplits, settings: NmtDatesSettings) -> Report:
        codec, humans, truth = self.codec(settings), data.test["human"].tolist(), data.test["machine"].tolist()
        result = translate(trained.model, codec, humans)
        metrics = {
            **translation_metrics(result.machine, truth),
            **baseline_metrics(data.train["machine"].tolist(), truth),
        }
        predictions = pd.DataFrame(
            {
                "line": data.test["line"],
                "human": humans,
                "machine": truth,
                "predicted": result.machine,
                "score": result.score,
            }
        )
        predictions["correct"] = predictions["machine"] == predictions["predicted"]
        # A spread of inputs for the maps: evenly over the test split, so several formats show up
        shown = np.linspace(0, len(humans) - 1, min(settings.attention_examples, len(humans))).astype(int)
        examples = translate(trained.model, codec, [humans[i] for i in shown])
        figures = {
            "training_curves": training_curves(trained.history, TRAINING_CURVES),
            "attention_maps": attention_figure([humans[i] for i in shown], examples),
        }
        tables = {
            "history": trained.history,
            "test_predictions": predictions.sort_values(["correct", "score"]).reset_index(drop=True),
        }
        return Report(metrics, figures, tables)

    def score(self, model, data: DateSplits, settings: NmtDatesSettings) -> dict[str, float]:
        frame = model.predict(pd.DataFrame({"human": data.test["human"]}))
        return translation_metrics(frame["machine"].astype(str).tolist(), data.test["machine"].tolist())

    def predictor(self, trained: Trained, data: DateSplits, settings: NmtDatesSettings):
        example = pd.DataFrame({"human": ["3 May 1979", "tuesday 10 july 2007", "5/30/68", "March 3, 2001"]})
        return DatePredictor(trained.model, self.codec(settings)), example
