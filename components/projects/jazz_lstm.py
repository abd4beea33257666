"""jazz-lstm: an LSTM language model over note tokens that improvises new melodies, written as MIDI [seed 003].

Real format: a folder of MIDI files (``<data_dir>/**/*.mid``), e.g. jazz solos; each file's melody becomes
a sequence of ``pitch/quarters`` and ``R/quarters`` tokens (components/data/formats/midi_melodies.py). Offline
sample: soprano lines of Bach chorales from the music21 corpus (no jazz corpus installs offline).

Files are split into train / validation / test pieces. The model is judged per token on the test pieces
against two count-based baselines (unigram: no context; bigram: the previous token), and by its samples:
how many of their tokens and token pairs occur in the training pieces, and how close their pitch-class
histogram is to the training data's. One generated solo is logged as a MIDI file and drawn as a piano roll.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from components.data.formats import midi_melodies as mm
from components.data.splits import random_split
from components.data.vocab import SPECIALS, Vocab
from components.evaluation.plots import Panel, training_curves
from components.evaluation.report import Report
from components.models.note_lstm import NoteLSTM
from components.models.params import count_parameters
from components.projects.base import Project, Trained
from components.projects.settings.jazz_lstm import CAPABILITIES, JazzLSTMSettings, NoteLSTMSettings
from components.serving.inputs import as_frame, column_values
from components.serving.predictor import Predictor
from components.training.loop import fit, resolve_device
from components.training.tasks import TokenLMTask
from components.training.token_lm import mean_loss, sequence_nll, tuned_bigram_loss, unigram_loss
from components.validation.expectations import ValidationReport


@dataclass
class MelodySplits:
    vocab: Vocab
    train: list[list[str]]  # token sequences, one per piece
    val: list[list[str]]
    test: list[list[str]]
    files: dict[str, list[str]]  # split -> file names

    def ids(self, split: str) -> list[list[int]]:
        return [encode(self.vocab, tokens) for tokens in getattr(self, split)]

    def sizes(self) -> dict[str, int]:
        return {
            "train_pieces": len(self.train),
            "val_pieces": len(self.val),
            "test_pieces": len(self.test),
            "train_tokens": sum(map(len, self.train)),
        }


def encode(vocab: Vocab, tokens: list[str]) -> list[int]:
    return [vocab.bos_id, *(vocab.index.get(t, vocab.unk_id) for t in tokens), vocab.eos_id]


def build_vocab(pieces: list[list[str]], min_count: int) -> Vocab:
    counts = Counter(t for piece in pieces for t in piece)
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return Vocab(SPECIALS + tuple(kept), "word", lowercase=False)


def note_model(vocab: Vocab, s: NoteLSTMSettings, seed: int) -> NoteLSTM:
    """The LSTM with initial weights drawn from ``seed``: fit() seeds torch only once the net exists, and torch's
    own start-up seed differs from process to process (two runs of the same commit gave 2.107 / 2.048 nats)."""
    torch.manual_seed(seed)
    return NoteLSTM(len(vocab), s.embed_dim, s.hidden_size, s.layers, s.dropout, pad_id=vocab.pad_id)


def generate(model: NoteLSTM, vocab: Vocab, prefix: list[str], length: int, temperature: float, seed: int) -> list[str]:
    """``length`` tokens after ``prefix``: a solo goes on where a training piece would end, so <eos> is never
    drawn (nor <pad>, <bos>); <unk> may be, and is skipped when the solo is written as MIDI."""
    ids = model.sample(
        encode(vocab, prefix)[:-1],
        length,
        temperature,
        banned=(vocab.pad_id, vocab.bos_id, vocab.eos_id),
        generator=torch.Generator().manual_seed(seed),
    )
    return [vocab.tokens[i] for i in ids]


def pitch_class_histogram(pieces: list[list[str]]) -> np.ndarray:
    """Share of sounding time per pitch class (C = 0) over all notes of the pieces."""
    hist = np.zeros(12)
    for piece in pieces:
        for token in piece:
            try:
                pitch, quarters = mm.parse_token(token)
            except ValueError:
                continue
            if pitch is not None:
                hist[pitch % 12] += quarters
    return hist / max(hist.sum(), 1e-12)


def sample_metrics(samples: list[list[str]], data: MelodySplits) -> dict[str, float]:
    """How much the samples look like the training pieces: tokens that are real notes or rests (not <unk>),
    consecutive token pairs that occur in training, and the total-variation distance between pitch-class
    histograms (with the test pieces' distance to training as the reference a real melody scores)."""
    tokens = [t for s in samples for t in s]
    train_pairs = {(a, b) for piece in data.train for a, b in zip(piece, piece[1:])}
    pairs = [p for s in samples for p in zip(s, s[1:])]
    train_hist = pitch_class_histogram(data.train)
    tv = lambda h: float(0.5 * np.abs(h - train_hist).sum())  # noqa: E731
    return {
        "sample_in_vocab_fraction": float(np.mean([t not in SPECIALS for t in tokens])) if tokens else 0.0,
        "sample_pair_seen_fraction": float(np.mean([p in train_pairs for p in pairs])) if pairs else 0.0,
        "sample_pitch_class_distance": tv(pitch_class_histogram(samples)),
        "test_pitch_class_distance": tv(pitch_class_histogram(data.test)),
    }


def piano_roll_figure(rolls: dict[str, list[str]]) -> plt.Figure:
    """Each token sequence as bars of pitch over time in quarters, one panel per sequence."""
    fig, axes = plt.subplots(len(rolls), 1, figsize=(9, 2.6 * len(rolls)), squeeze=False)
    for ax, (title, tokens) in zip(axes[:, 0], rolls.items()):
        now = 0.0
        for token in tokens:
            try:
                pitch, quarters = mm.parse_token(token)
            except ValueError:
                continue
            if pitch is not None:
                ax.broken_barh([(now, quarters * 0.95)], (pitch - 0.4, 0.8), color="tab:blue")
            now += quarters
        ax.set(title=title, xlabel="quarter notes", ylabel="MIDI pitch")
        ax.autoscale_view()
    fig.tight_layout()
    return fig


class MelodyPredictor(Predictor):
    """Served model: columns ``prefix`` (tokens separated by spaces, e.g. ``"72/1 71/0.5"``; "" to start
    fresh), optional ``length`` (tokens to add; 0 adds none) and ``temperature`` -> ``tokens``, the prefix
    and its continuation; ``midi_base64``, them as a MIDI file; and ``score``, the prefix read as a whole
    piece in mean nats per token (lower = more like the training music). Same input, same output: each row's
    sampling is seeded by the predictor's seed and the row."""

    def __init__(self, model: NoteLSTM, vocab: Vocab, length: int, temperature: float, bpm: float, seed: int = 0):
        self.model, self.vocab = model.cpu().eval(), vocab
        self.length, self.temperature, self.bpm, self.seed = length, temperature, bpm, seed
        self.pip_requirements = ["music21"]

    def predict_frame(self, inputs) -> pd.DataFrame:
        frame = as_frame(inputs, ["prefix"])
        prefixes = [str(p).split() for p in column_values(frame, "prefix", "")]
        lengths = [int(n) for n in column_values(frame, "length", self.length)]
        temperatures = [float(t) for t in column_values(frame, "temperature", self.temperature)]
        nll, counts = sequence_nll(
            self.model, [encode(self.vocab, p) for p in prefixes], torch.device("cpu"), self.vocab.pad_id
        )
        solos = [
            p + generate(self.model, self.vocab, p, n, t, self.seed + i) if n > 0 else p
            for i, (p, n, t) in enumerate(zip(prefixes, lengths, temperatures))
        ]
        return pd.DataFrame(
            {
                "prefix": [" ".join(p) for p in prefixes],
                "tokens": [" ".join(s) for s in solos],
                "midi_base64": [base64.b64encode(mm.write_midi(s, bpm=self.bpm)).decode("ascii") for s in solos],
                "score": nll / np.maximum(counts, 1),
            }
        )


class JazzLSTM(Project):
    name = "jazz-lstm"
    capabilities = CAPABILITIES
    summary = "LSTM language model over note tokens, sampling new solos written as MIDI (folder of MIDI files)"
    primary_metric = "loss"
    higher_is_better = False
    Settings = JazzLSTMSettings

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        return mm.generate(out_dir, count=20) if tiny else mm.generate(out_dir)

    def validate(self, settings: JazzLSTMSettings) -> ValidationReport:
        d = settings.data
        rules = mm.MelodyRules(d.min_notes, d.min_pitch, d.max_pitch, d.min_files)
        report, _ = mm.validate_melodies(settings.data_dir, rules)
        return report

    def prepare(self, settings: JazzLSTMSettings) -> MelodySplits:
        d, root = settings.data, settings.data_dir
        pieces = {}
        for path in mm.midi_files(root):
            notes = mm.read_melody(path)
            notes = mm.transpose_to_c(notes) if d.transpose else notes
            pieces[path.relative_to(root).as_posix()] = mm.melody_tokens(notes, d.grid, d.max_steps)
        names = sorted(pieces)
        split = random_split(len(names), {"test": settings.split.test, "val": settings.split.val}, settings.seed)
        files = {k: [names[i] for i in idx] for k, idx in split.items()}
        tokens = {k: [pieces[f] for f in fs] for k, fs in files.items()}
        vocab = build_vocab(tokens["train"], d.min_count)
        return MelodySplits(vocab, tokens["train"], tokens["val"], tokens["test"], files)

    def train(self, data: MelodySplits, settings: JazzLSTMSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        t = settings.train
        model = note_model(data.vocab, settings.model, settings.seed)
        result = fit(
            model,
            TokenLMTask(data.vocab.pad_id, t.window),
            data.ids("train"),
            data.ids("val"),
            t,
            resolve_device(settings.device),
            seed=settings.seed,
            on_epoch=on_epoch,
            checkpoint_dir=checkpoint_dir,
            resume=True,
            progress=False,
        )
        history, best_epoch = result.as_rows(), result.best_epoch
        torch.save(model.state_dict(), checkpoint_dir / "note_lstm.pt")
        info = {
            "best_epoch": best_epoch,
            "parameters": count_parameters(model),
            "vocabulary": len(data.vocab),
            **data.sizes(),
        }
        return Trained(model.cpu(), pd.DataFrame(history), info)

    def evaluate(self, trained: Trained, data: MelodySplits, settings: JazzLSTMSettings) -> Report:
        model, vocab, g = trained.model, data.vocab, settings.generation
        train, val, test = data.ids("train"), data.ids("val"), data.ids("test")
        loss = mean_loss(model, test, torch.device("cpu"), vocab.pad_id)
        unigram = unigram_loss(train, test, len(vocab))
        bigram, bigram_k = tuned_bigram_loss(train, val, test, len(vocab))
        samples = [generate(model, vocab, [], g.length, g.temperature, settings.seed + i) for i in range(g.count)]
        metrics = {
            "loss": loss,
            "perplexity": float(np.exp(loss)),
            "unigram_loss": unigram,
            "bigram_loss": bigram,
            "bigram_smoothing": bigram_k,
            "loss_below_unigram": unigram - loss,
            "loss_below_bigram": bigram - loss,
            **sample_metrics(samples, data),
        }
        solo = samples[0]
        loss_panel = Panel(
            {"train_loss": "train", "val_loss": "validation"},
            "nats per token",
            "Note-token LSTM language model",
            references={
                f"unigram baseline (test) {unigram:.3f}": unigram,
                f"bigram baseline (test) {bigram:.3f}": bigram,
                f"LSTM (test) {loss:.3f}": loss,
            },
            legend={"fontsize": 8},
        )
        figures = {
            "loss_curve": training_curves(trained.history, [loss_panel], marker=".", figsize=(6, 4)),
            "piano_roll": piano_roll_figure(
                {
                    f"generated solo (temperature {g.temperature:g})": solo,
                    f"a training piece ({data.files['train'][0]})": data.train[0],
                }
            ),
        }
        table = pd.DataFrame({"sample": range(len(samples)), "tokens": [" ".join(s) for s in samples]})
        return Report(
            metrics,
            figures,
            {"history": trained.history, "samples": table},
            files={"generated_solo.mid": mm.write_midi(solo, bpm=g.bpm)},
        )

    def score(self, model, data: MelodySplits, settings: JazzLSTMSettings) -> dict[str, float]:
        """Test loss of a served model from its per-piece ``score`` column: each piece's mean nats per token,
        weighted by its tokens plus the end, is the per-token mean ``evaluate`` reports."""
        frame = model.predict(
            pd.DataFrame(
                {
                    "prefix": [" ".join(p) for p in data.test],
                    "length": [0] * len(data.test),
                    "temperature": [1.0] * len(data.test),
                }
            )
        )
        weights = np.array([len(p) + 1 for p in data.test], dtype=float)
        loss = float(np.sum(frame["score"].to_numpy(dtype=float) * weights) / weights.sum())
        return {"loss": loss, "perplexity": float(np.exp(loss))}

    def predictor(self, trained: Trained, data: MelodySplits, settings: JazzLSTMSettings):
        g = settings.generation
        example = pd.DataFrame(
            {"prefix": ["", " ".join(data.train[0][:4])], "length": [8, 8], "temperature": [1.0, 0.5]}
        )
        return MelodyPredictor(trained.model, data.vocab, g.length, g.temperature, g.bpm, settings.seed), example
