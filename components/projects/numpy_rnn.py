"""numpy-rnn: a character-level language model with RNN / GRU / LSTM cells written in NumPy [seeds 001, 003].

Real format: a UTF-8 text file with one name per line (``<data_dir>/<data.file>``), e.g. the dinosaur-names
list. Offline sample: the 1990 US Census first names bundled with the ``names`` package. The model is judged
against two count-based baselines on held-out names (unigram: no context; bigram: the previous character)
and by its samples: how many are new names rather than copies of the training list. The other cells in
``compare_cells`` are trained with the same settings as comparison child runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats import name_lines
from components.data.splits import random_split
from components.evaluation.plots import Panel, compare_curves, training_curves
from components.evaluation.report import ChildRun, Report
from components.projects.base import Project, Trained
from components.projects.settings.numpy_rnn import CAPABILITIES, NamesDataSettings, NumpyRNNSettings, SamplingSettings
from components.scratch.charlm import CharLanguageModel, bigram_loss, unigram_loss
from components.serving.inputs import as_text_list
from components.serving.predictor import Predictor
from components.validation.expectations import ValidationReport


@dataclass
class NameSplits:
    train: list[str]
    val: list[str]
    test: list[str]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


@dataclass
class CharLMTrained(Trained):
    arms: dict[str, CharLanguageModel] = field(default_factory=dict)


def language_model(settings: NumpyRNNSettings, cell: str | None = None) -> CharLanguageModel:
    t = settings.train
    return CharLanguageModel(
        cell=cell or settings.model.cell,
        hidden_size=settings.model.hidden_size,
        optimizer=t.optimizer,
        lr=t.lr,
        epochs=t.epochs,
        batch_size=t.batch_size,
        grad_clip=t.grad_clip,
        decay=t.decay,
        decay_rate=t.decay_rate,
        max_len=settings.sampling.max_len,
        seed=settings.seed,
        alphabet=settings.data.alphabet,  # a held-out name may hold a letter no training name has
    )


def sample_figures(model: CharLanguageModel, names: NameSplits, s: SamplingSettings, seed: int) -> dict[str, float]:
    """Novelty of ``s.count`` samples at ``s.temperature``: the share not in the training list, the share not
    anywhere in the dataset, and the share that are real held-out names the model never saw."""
    samples = model.sample(s.count, s.temperature, seed=seed)
    train, held_out = set(names.train), set(names.val) | set(names.test)
    return {
        "novel_fraction": float(np.mean([x not in train for x in samples])),
        "novel_to_dataset_fraction": float(np.mean([x not in train and x not in held_out for x in samples])),
        "heldout_name_fraction": float(np.mean([x in held_out for x in samples])),
        "empty_sample_fraction": float(np.mean([x == "" for x in samples])),
        "mean_sample_length": float(np.mean([len(x) for x in samples])),
    }


def sampled_names_text(model: CharLanguageModel, names: NameSplits, s: SamplingSettings, seed: int) -> bytes:
    """The names ``sample_figures`` judges (same seed), one a line, each marked new or copied from training."""
    train = set(names.train)
    lines = [f"# {s.count} names sampled at temperature {s.temperature}; 'copy' = in the training list"]
    lines += [f"{x}\t{'copy' if x in train else 'new'}" for x in model.sample(s.count, s.temperature, seed=seed)]
    return "\n".join(lines).encode() + b"\n"


class CharLMPredictor(Predictor):
    """Served model: a column ``prefix`` (strings; "" for a fresh name) -> ``name``, a sampled name starting
    with the prefix, and ``score``, the input read as a whole name in mean nats per character (lower = more
    name-like). Same input, same output: each row's sampling is seeded by the predictor's seed and the row."""

    def __init__(self, model: CharLanguageModel, temperature: float, lowercase: bool, seed: int = 0):
        self.model, self.temperature, self.lowercase, self.seed = model, temperature, lowercase, seed

    def _prefixes(self, inputs) -> list[str]:
        return [v.strip().lower() if self.lowercase else v.strip() for v in as_text_list(inputs, "prefix")]

    def predict_frame(self, inputs) -> pd.DataFrame:
        prefixes = self._prefixes(inputs)
        names = [
            self.model.sample(1, self.temperature, seed=self.seed + i, prefix=p)[0] for i, p in enumerate(prefixes)
        ]
        return pd.DataFrame({"prefix": prefixes, "name": names, "score": self.model.name_losses(prefixes)})


class NumpyRNN(Project):
    name = "numpy-rnn"
    capabilities = CAPABILITIES
    summary = "Char-level name generator: RNN/GRU/LSTM cells from scratch in NumPy, sampling, clipping (text lines)"
    primary_metric = "loss"
    higher_is_better = False
    Settings = NumpyRNNSettings

    example_prefixes = ("", "ma", "jo")  # the served model's input example

    def make_sample(self, out_dir: Path) -> dict:
        return name_lines.generate(out_dir, NamesDataSettings().file)

    def rules(self, settings: NumpyRNNSettings) -> name_lines.NameRules:
        d = settings.data
        return name_lines.NameRules(d.alphabet, d.min_length, d.max_length, d.min_names)

    def validate(self, settings: NumpyRNNSettings) -> ValidationReport:
        report, _ = name_lines.validate_names(
            settings.data_dir / settings.data.file, self.rules(settings), settings.data.lowercase, self.name
        )
        return report

    def prepare(self, settings: NumpyRNNSettings) -> NameSplits:
        lines = name_lines.read_lines(settings.data_dir / settings.data.file, self.name)
        names = name_lines.names_table(lines, settings.data.lowercase)["name"].to_numpy()
        split = random_split(len(names), {"test": settings.split.test, "val": settings.split.val}, settings.seed)
        return NameSplits(*(names[split[part]].tolist() for part in ("train", "val", "test")))

    def train(self, data: NameSplits, settings: NumpyRNNSettings, *, on_epoch, checkpoint_dir: Path) -> CharLMTrained:
        def numeric(row: dict) -> None:  # MLflow metrics are numbers; the epoch's sample goes to the history table
            on_epoch({k: v for k, v in row.items() if k != "sample"})

        model = language_model(settings).fit(data.train, data.val, on_epoch=numeric)
        arms = {
            c: language_model(settings, c).fit(data.train, data.val)
            for c in settings.compare_cells
            if c != settings.model.cell
        }
        info = {
            "cell": settings.model.cell,
            "best_epoch": model.best_epoch_,
            "parameters": model.net_.parameter_count(),
            "vocabulary": len(model.vocab_),
            **data.sizes(),
        }
        return CharLMTrained(model, pd.DataFrame(model.history_), info, arms)

    def evaluate(self, trained: CharLMTrained, data: NameSplits, settings: NumpyRNNSettings) -> Report:
        model, s = trained.model, settings.sampling
        loss, unigram, bigram = (
            model.loss(data.test),
            unigram_loss(data.train, data.test),
            bigram_loss(data.train, data.test),
        )
        metrics = {
            "loss": loss,
            "perplexity": float(np.exp(loss)),
            "unigram_loss": unigram,
            "bigram_loss": bigram,
            "loss_below_unigram": unigram - loss,
            **sample_figures(model, data, s, settings.seed),
        }
        train_set = set(data.train)
        rows = [
            {"temperature": t, "name": name, "novel": name not in train_set}
            for t in s.table_temperatures
            for name in model.sample(s.table_count, t, seed=settings.seed + 1)
        ]
        curves = {settings.model.cell: trained.history}
        children = []
        for cell, arm in trained.arms.items():
            arm_loss = arm.loss(data.test)
            arm_metrics = {"test_loss": arm_loss, **sample_figures(arm, data, s, settings.seed)}
            metrics[f"loss_{cell}"] = arm_loss
            history = pd.DataFrame(arm.history_)
            curves[cell] = history
            children.append(
                ChildRun(
                    f"cell={cell}",
                    {"cell": cell, "hidden_size": settings.model.hidden_size},
                    arm_metrics,
                    history.drop(columns="sample").rename(columns={"epoch": "step"}),
                )
            )
        served = settings.model.cell
        loss_panel = Panel(
            {"train_loss": "train", "val_loss": "validation"},
            "nats per character",
            f"Character-level {served.upper()} language model",
            references={
                f"unigram baseline (test) {unigram:.3f}": unigram,
                f"bigram baseline (test) {bigram:.3f}": bigram,
                f"{served} (test) {loss:.3f}": loss,
            },
            legend={"fontsize": 8, "loc": "center right"},
        )
        figures = {"loss_curve": training_curves(trained.history, [loss_panel], marker="o", figsize=(6, 4))}
        if len(curves) > 1:
            figures["cells"] = compare_curves(
                curves, Panel({"val_loss": None}, "validation nats per character", "RNN vs GRU vs LSTM")
            )
        tables = {"history": trained.history, "samples": pd.DataFrame(rows)}
        return Report(
            metrics, figures, tables, children, {"sampled_names.txt": sampled_names_text(model, data, s, settings.seed)}
        )

    def score(self, model, data: NameSplits, settings: NumpyRNNSettings) -> dict[str, float]:
        """Test loss of a served model from its per-name ``score`` column: each name's mean nats per character,
        weighted by its characters plus the end, is the per-character mean ``evaluate`` reports."""
        names = data.test
        frame = model.predict(pd.DataFrame({"prefix": names}))
        weights = np.array([len(n) + 1 for n in names], dtype=float)
        loss = float(np.sum(frame["score"].to_numpy(dtype=float) * weights) / weights.sum())
        return {"loss": loss, "perplexity": float(np.exp(loss))}

    def predictor(self, trained: CharLMTrained, data: NameSplits, settings: NumpyRNNSettings):
        example = pd.DataFrame({"prefix": list(self.example_prefixes)})
        return CharLMPredictor(
            trained.model, settings.sampling.temperature, settings.data.lowercase, settings.seed
        ), example
