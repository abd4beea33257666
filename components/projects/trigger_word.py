"""trigger-word: detect the word "activate" in noisy audio, Conv1D + GRU on log-mel spectrograms [seed 003].

Real format: the course's ``raw_data/`` folder (``activates/``, ``negatives/``, ``backgrounds/`` of WAVs, see
data/trigger_audio.py). Clips are synthesised at prepare time, deterministically from ``seed``: each split
mixes its own recordings (the word files are split before mixing, so test clips hold voices the model never
heard) onto random stretches of the backgrounds. The label of an output step is 1 during the
``label_seconds`` after a trigger ends, as in the course (50 of its 1375 steps = 0.36 s).

We use 4 s clips at 16 kHz (the course: 10 s at 44.1 kHz) and 64 log-mel bins every 10 ms: a quarter of the
steps to train on a CPU, and every clip still has room for two triggers and two other words.

Served model: a column ``wav_base64`` (a WAV file's bytes, base64; any rate, resampled) -> ``triggers`` (JSON
list of detection times in seconds), ``n_triggers``, and a summary of the per-step probabilities (``steps``,
``step_seconds``, ``max_probability``, ``mean_probability`` and ``probabilities`` as a JSON list).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

from components.data.formats import trigger_audio
from components.data.log_mel import LogMel, log_mel
from components.data.splits import random_split
from components.evaluation.plots import Panel, training_curves
from components.evaluation.report import Report
from components.metrics.trigger import detection_runs, detection_scores, step_scores
from components.models.params import count_parameters
from components.models.trigger_word import TriggerWordDetector, TwoClassLogits
from components.projects.base import Project, Trained
from components.projects.settings.trigger_word import CAPABILITIES, TriggerDataSettings, TriggerWordSettings
from components.serving.inputs import as_text_list
from components.serving.predictor import Predictor
from components.settings import SplitSettings
from components.training.loop import fit, resolve_device
from components.training.tasks import ClassificationTask
from components.validation.expectations import ValidationReport


def log_mel_config(settings: TriggerWordSettings) -> LogMel:
    f = settings.features
    return LogMel(settings.data.sample_rate, f.n_fft, f.hop, f.mels)


def step_times(steps: int, settings: TriggerWordSettings) -> np.ndarray:
    """The time (s) of the last audio each output step has seen: the end of its convolution window."""
    m, f = settings.model, settings.features
    return (m.stride * np.arange(steps) + m.kernel - 1) * f.hop / settings.data.sample_rate


def step_labels(ends: list[list[float]], steps: int, settings: TriggerWordSettings) -> torch.Tensor:
    times = step_times(steps, settings)
    labels = np.zeros((len(ends), steps), np.int64)
    for row, clip_ends in enumerate(ends):
        for e in clip_ends:
            labels[row, (times > e) & (times <= e + settings.clips.label_seconds)] = 1
    return torch.from_numpy(labels)


def split_files(count: int, split: SplitSettings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Recordings of one folder split by file, at least one each where there are three (fewer all train).
    Unsorted: clips are mixed from the files in this order."""
    sizes = {"test": split.test, "val": split.val} if count >= 3 else {"test": 0, "val": 0}
    return random_split(count, sizes, rng, sort=False)


@dataclass
class TriggerData:
    features: dict[str, torch.Tensor] = field(default_factory=dict)  # split -> (N, mels, frames)
    labels: dict[str, torch.Tensor] = field(default_factory=dict)  # split -> (N, steps) 0/1
    ends: dict[str, list[list[float]]] = field(default_factory=dict)  # split -> per clip, trigger end times (s)
    test_audio: np.ndarray | None = None  # (N, samples) int16: what the served model hears
    rate: int = 16000

    def test_wavs(self) -> list[str]:
        return [base64.b64encode(trigger_audio.encode_wav(a, self.rate)).decode("ascii") for a in self.test_audio]

    def sizes(self) -> dict[str, int]:
        return {f"{s}_clips": len(v) for s, v in self.labels.items()}


class TriggerWordPredictor(Predictor):
    """Served model: ``wav_base64`` -> detected trigger times and a summary of the per-step probabilities."""

    def __init__(self, detector: TriggerWordDetector, features: LogMel, settings: TriggerWordSettings):
        self.detector, self.features = detector.cpu().eval(), features
        self.threshold, self.merge_gap = settings.detection.threshold, settings.detection.merge_gap
        self.stride, self.kernel = settings.model.stride, settings.model.kernel

    def step_time(self, step) -> np.ndarray:
        return (self.stride * np.asarray(step) + self.kernel - 1) * self.features.hop / self.features.rate

    def _wave(self, encoded: str) -> np.ndarray:
        samples, rate, _ = trigger_audio.decode_wav(base64.b64decode(encoded))
        x = trigger_audio.to_mono(samples)
        if rate != self.features.rate:
            from scipy.signal import resample_poly

            g = np.gcd(rate, self.features.rate)
            x = resample_poly(x, self.features.rate // g, rate // g)
        return x.astype(np.float32)

    def probabilities(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Per-step probabilities of each wave; clips of one length go through the net as one batch."""
        out: list[np.ndarray | None] = [None] * len(waves)
        for length in sorted({len(w) for w in waves}):
            rows = [i for i, w in enumerate(waves) if len(w) == length]
            proba = self.detector.probabilities(log_mel(np.stack([waves[i] for i in rows]), self.features)).numpy()
            for i, p in zip(rows, proba):
                out[i] = p
        return out

    def predict_frame(self, inputs) -> pd.DataFrame:
        encoded = as_text_list(inputs, "wav_base64")
        rows = []
        with torch.no_grad():
            for p in self.probabilities([self._wave(e) for e in encoded]):
                runs = detection_runs(p, self.threshold, self.merge_gap)
                times = [round(float(self.step_time(first)), 3) for first, _ in runs]
                rows.append(
                    {
                        "triggers": json.dumps(times),
                        "n_triggers": len(times),
                        "steps": len(p),
                        "step_seconds": self.stride * self.features.hop / self.features.rate,
                        "max_probability": float(p.max()) if len(p) else 0.0,
                        "mean_probability": float(p.mean()) if len(p) else 0.0,
                        "probabilities": json.dumps([round(float(v), 3) for v in p]),
                    }
                )
        return pd.DataFrame(
            rows,
            columns=[
                "triggers",
                "n_triggers",
                "steps",
                "step_seconds",
                "max_probability",
                "mean_probability",
                "probabilities",
            ],
        )


def served_detections(frame: pd.DataFrame) -> list[list[float]]:
    return [json.loads(t) for t in frame["triggers"]]


class TriggerWord(Project):
    name = "trigger-word"
    capabilities = CAPABILITIES
    summary = "Trigger-word detection: Conv1D + 2 GRUs over log-mel spectrograms, a sigmoid per step (raw_data WAVs)"
    Settings = TriggerWordSettings
    primary_metric = "detection_f1"

    def rules(self, settings: TriggerWordSettings) -> trigger_audio.AudioRules:
        d = settings.data
        return trigger_audio.AudioRules(
            d.sample_rate,
            d.channels,
            d.min_word_seconds,
            d.max_word_seconds,
            settings.clips.seconds,
            d.max_background_seconds,
        )

    def make_sample(self, out_dir: Path) -> dict:
        return trigger_audio.write_sample(out_dir, TriggerDataSettings().sample_rate)

    def validate(self, settings: TriggerWordSettings) -> ValidationReport:
        return trigger_audio.validate_raw_data(settings.data_dir, self.rules(settings))[0]

    def prepare(self, settings: TriggerWordSettings) -> TriggerData:
        rate, c = settings.data.sample_rate, settings.clips
        recordings = trigger_audio.load_raw_data(settings.data_dir)
        rng = np.random.default_rng(settings.seed)
        parts = {
            folder: split_files(len(recordings[folder]), settings.split, rng) for folder in ("activates", "negatives")
        }
        mix = trigger_audio.MixSettings(
            int(round(c.seconds * rate)),
            rate,
            c.max_activates,
            c.max_negatives,
            tuple(c.background_rms),
            tuple(c.word_peak),
        )
        config = log_mel_config(settings)
        data = TriggerData(rate=rate)
        for offset, split in enumerate(("train", "val", "test")):
            words = {
                folder: [recordings[folder][i] for i in parts[folder][split]] or recordings[folder]
                for folder in ("activates", "negatives")
            } | {"backgrounds": recordings["backgrounds"]}
            audio, ends = trigger_audio.mix_clips(words, getattr(c, split), mix, seed=settings.seed * 1000 + offset)
            features = torch.cat([log_mel(audio[i : i + 256], config) for i in range(0, len(audio), 256)])
            steps = (features.shape[-1] - settings.model.kernel) // settings.model.stride + 1
            data.features[split], data.ends[split] = features, ends
            data.labels[split] = step_labels(ends, steps, settings)
            if split == "test":
                data.test_audio = audio
        return data

    def network(self, settings: TriggerWordSettings) -> TriggerWordDetector:
        m = settings.model
        torch.manual_seed(settings.seed)
        return TriggerWordDetector(settings.features.mels, m.channels, m.kernel, m.stride, m.hidden, m.dropout)

    def train(self, data: TriggerData, settings: TriggerWordSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        detector = self.network(settings)
        detector.set_normalisation(data.features["train"])
        steps = data.labels["train"].shape[1]
        device = resolve_device(settings.device)
        weight = torch.tensor([1.0, settings.model.positive_weight], device=device)  # there once: no copy a step

        def loss_fn(logits, y):
            return torch.nn.functional.cross_entropy(logits, y, weight=weight)

        before = torch.get_num_threads()
        if device.type == "cpu":  # small GRU steps: threads wait on each other more than they compute (measured
            torch.set_num_threads(1)  # a default epoch on the busy 2-core box: ~3 s with 1 thread, >100 s with 2)
        try:
            # a label per step of each clip: accuracy counts steps
            result = fit(
                TwoClassLogits(detector),
                ClassificationTask(loss_fn, accuracy_name="val_step_accuracy"),
                TensorDataset(data.features["train"], data.labels["train"]),
                TensorDataset(data.features["val"], data.labels["val"]),
                settings.train,
                device,
                seed=settings.seed,
                on_epoch=on_epoch,
                checkpoint_dir=checkpoint_dir,
                resume=True,
                progress=False,
            )
        finally:
            torch.set_num_threads(before)
        info = {
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "steps": steps,
            "parameters": count_parameters(detector),
            "positive_step_share": float(data.labels["train"].float().mean()),
            **data.sizes(),
        }
        return Trained(detector.cpu().eval(), pd.DataFrame(result.as_rows()), info)

    def evaluate(self, trained: Trained, data: TriggerData, settings: TriggerWordSettings) -> Report:
        served, d = self.predictor(trained, data, settings)[0], settings.detection
        frame = served.predict_frame(data.test_wavs())  # the served model's own detections: score() sees the same
        detected, truth = served_detections(frame), data.ends["test"]
        metrics = detection_scores(detected, truth, settings.clips.label_seconds, d.tolerance_seconds)
        proba = trained.model.probabilities(data.features["test"]).numpy()
        metrics.update(step_scores(data.labels["test"].numpy(), proba, d.threshold))
        baseline = detection_scores([[] for _ in truth], truth, settings.clips.label_seconds, d.tolerance_seconds)
        metrics.update(
            baseline_detection_f1=baseline["detection_f1"],
            test_triggers=float(sum(map(len, truth))),
            baseline_step_accuracy=float(1 - data.labels["test"].float().mean()),
        )
        table = pd.DataFrame(
            {
                "clip": np.arange(len(truth)),
                "true_ends": [json.dumps([round(e, 3) for e in t]) for t in truth],
                "detected": frame["triggers"],
                "max_probability": frame["max_probability"],
            }
        )
        shown = [i for i, t in enumerate(truth) if t][:2] or [0]
        figures = {
            "loss_curves": training_curves(trained.history, LOSS_CURVES),
            "test_clips": clips_figure(data, proba, shown, settings),
        }
        return Report(metrics, figures, {"history": trained.history, "test_detections": table})

    def score(self, model, data: TriggerData, settings: TriggerWordSettings) -> dict[str, float]:
        frame = model.predict(pd.DataFrame({"wav_base64": data.test_wavs()}))
        return detection_scores(
            served_detections(frame),
            data.ends["test"],
            settings.clips.label_seconds,
            settings.detection.tolerance_seconds,
        )

    def predictor(self, trained: Trained, data: TriggerData, settings: TriggerWordSettings):
        example = pd.DataFrame({"wav_base64": data.test_wavs()[:2]})
        return TriggerWordPredictor(trained.model, log_mel_config(settings), settings), example


# --- figures ---------------------------------------------------------------------------------------------------


LOSS_CURVES = (
    Panel({"train_loss": "train", "val_loss": "validation"}, "weighted cross-entropy per step", "Loss"),
    Panel({"val_step_accuracy": None}, "accuracy", "Validation accuracy per step"),
)


def clips_figure(data: TriggerData, proba: np.ndarray, shown: list[int], settings: TriggerWordSettings):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        2, len(shown), figsize=(6 * len(shown), 5), squeeze=False, sharex="col", gridspec_kw={"height_ratios": [2, 1]}
    )
    seconds = settings.clips.seconds
    for col, i in enumerate(shown):
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(
            data.features["test"][i].numpy(),
            origin="lower",
            aspect="auto",
            extent=(0, seconds, 0, settings.features.mels),
        )
        top.set(
            ylabel="mel bin",
            title=f"test clip {i}: triggers end at " + ", ".join(f"{e:.2f}" for e in data.ends["test"][i]) + " s",
        )
        times = step_times(proba.shape[1], settings)
        bottom.step(times, data.labels["test"][i].numpy(), where="post", label="label")
        bottom.plot(times, proba[i], label="predicted probability")
        bottom.axhline(settings.detection.threshold, color="k", lw=0.6, ls="--")
        bottom.set(xlabel="seconds", ylim=(-0.05, 1.05))
        bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
