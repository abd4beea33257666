"""Trigger-word audio in the course's ``raw_data/`` layout, and the clips synthesised from it.

Real format: a folder with three sub-folders of WAV files (PCM, any bit depth of 8/16/32):

    activates/*.wav     one recording of the trigger word each ("activate")
    negatives/*.wav     one recording of another word each
    backgrounds/*.wav   background noise, at least one clip long

Training clips are not files: like the course, ``mix_clips`` pastes words onto a random stretch of a
background at random, non-overlapping times, deterministically from a seed, and records where each trigger
ends (the labels follow from those times). This is the one design we support: a folder of already-mixed clips
with a labels CSV would need its own reader.

The offline sample is real (synthetic) speech from the Debian package ``espeak-ng``: the trigger word and 24
other words in several voices, speeds and pitches, resampled to 16 kHz mono; backgrounds are seeded coloured
noise (white, pink, brown) with a mains hum. espeak-ng writes the same bytes for the same arguments, so the
sample is the same every run (the test checks it).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.images import MissingDataError
from components.validation.expectations import DataValidationError, ValidationReport, class_table, run_suite

FOLDERS = ("activates", "negatives", "backgrounds")
TRIGGER = "activate"
NEGATIVE_WORDS = (
    "action",
    "active",
    "captivate",
    "vacate",
    "cactus",
    "activity",
    "agitate",
    "relate",
    "weather",
    "hello",
    "computer",
    "music",
    "tomorrow",
    "station",
    "kitchen",
    "window",
    "yellow",
    "dinner",
    "morning",
    "garden",
    "lemon",
    "rabbit",
    "seven",
    "happy",
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-us+m3", "en-gb+f2", "en-us+f4", "en-gb-scotland", "en-us+m7")
SPEEDS = (120, 150, 180)
PITCHES = (35, 55, 75)


# --- WAV files ---------------------------------------------------------------------------------------------------


def decode_wav(data: bytes) -> tuple[np.ndarray, int, int]:
    """(samples as float32 in [-1, 1] of shape (frames, channels), sample rate, channels) of PCM WAV bytes."""
    with wave.open(io.BytesIO(data), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / 2**31
    else:
        raise wave.Error(f"unsupported sample width of {width} bytes (expected 8, 16 or 32-bit PCM)")
    return x.reshape(-1, channels), rate, channels


def read_wav(path: str | Path) -> tuple[np.ndarray, int, int]:
    return decode_wav(Path(path).read_bytes())


def encode_wav(samples: np.ndarray, rate: int) -> bytes:
    """Mono 16-bit PCM WAV bytes of float samples in [-1, 1] (or int16 samples, written as they are)."""
    samples = np.asarray(samples)
    pcm = samples if samples.dtype == np.int16 else to_int16(samples)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


def to_int16(samples: np.ndarray) -> np.ndarray:
    return np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)


def to_mono(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1) if samples.ndim == 2 else samples


# --- scanning and validation ---------------------------------------------------------------------------------


def scan_raw_data(root: str | Path) -> pd.DataFrame:
    """One row per ``<folder>/<file>.wav``: path, folder, decodable, error, rate, channels, seconds."""
    root = Path(root)
    if not root.is_dir():
        raise MissingDataError(
            f"data directory {root} does not exist: run `dlfolio data trigger-word` for the "
            f"offline sample, or put the course's raw_data layout there ({', '.join(FOLDERS)}/)"
        )
    rows = []
    for folder in FOLDERS:
        for path in sorted((root / folder).glob("*.wav")) if (root / folder).is_dir() else []:
            row = {
                "path": str(path.relative_to(root)),
                "folder": folder,
                "decodable": True,
                "error": "",
                "rate": 0,
                "channels": 0,
                "seconds": 0.0,
            }
            try:
                samples, rate, channels = read_wav(path)
                row.update(rate=rate, channels=channels, seconds=len(samples) / rate)
            except (wave.Error, EOFError, ValueError) as exc:
                row.update(decodable=False, error=str(exc) or type(exc).__name__)
            rows.append(row)
    return pd.DataFrame(rows, columns=["path", "folder", "decodable", "error", "rate", "channels", "seconds"])


@dataclass(frozen=True)
class AudioRules:
    rate: int = 16000
    channels: int = 1
    min_word_seconds: float = 0.1
    max_word_seconds: float = 2.5
    min_background_seconds: float = 4.0  # a clip is cut from one background
    max_background_seconds: float = 600.0
    min_per_folder: int = 1


def raw_data_expectations(rules: AudioRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    words = 'folder != "backgrounds"'
    backgrounds = 'folder == "backgrounds"'
    return [
        E.ExpectColumnValuesToBeInSet(
            column="decodable", value_set=[True], meta={"explain": "file must decode as PCM WAV"}
        ),
        E.ExpectColumnValuesToBeInSet(
            column="rate",
            value_set=[rules.rate],
            row_condition="decodable == True",
            condition_parser="pandas",
            meta={"explain": f"sample rate {rules.rate} Hz"},
        ),
        E.ExpectColumnValuesToBeInSet(
            column="channels",
            value_set=[rules.channels],
            row_condition="decodable == True",
            condition_parser="pandas",
            meta={"explain": f"{rules.channels} channel(s)"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="seconds",
            min_value=rules.min_word_seconds,
            max_value=rules.max_word_seconds,
            row_condition=f"decodable == True and {words}",
            condition_parser="pandas",
            meta={"explain": f"a word lasts {rules.min_word_seconds}-{rules.max_word_seconds} s"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="seconds",
            min_value=rules.min_background_seconds,
            max_value=rules.max_background_seconds,
            row_condition=f"decodable == True and {backgrounds}",
            condition_parser="pandas",
            meta={
                "explain": f"a background lasts {rules.min_background_seconds}-"
                f"{rules.max_background_seconds} s (at least one clip)"
            },
        ),
    ]


def folder_expectations(rules: AudioRules) -> list:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="count",
            min_value=rules.min_per_folder,
            meta={"explain": f"each folder holds at least {rules.min_per_folder} WAV file(s)"},
        )
    ]


def validate_raw_data(root: str | Path, rules: AudioRules) -> tuple[ValidationReport, pd.DataFrame]:
    """Scan and validate a raw_data folder; raises DataValidationError naming the failing files or folders."""
    manifest = scan_raw_data(root)
    outcomes = run_suite(manifest, raw_data_expectations(rules), name="trigger-audio", id_column="path")
    by_path = manifest.set_index("path")
    for o in outcomes:  # "negatives/x.wav (file does not start with RIFF id)" or "(8000 Hz, 1 ch, 0.50 s)"
        o.failing = [
            f"{p} ({by_path.loc[p, 'error']})"
            if by_path.loc[p, "error"]
            else f"{p} ({by_path.loc[p, 'rate']} Hz, {by_path.loc[p, 'channels']} ch, {by_path.loc[p, 'seconds']:.2f} s)"
            if p in by_path.index
            else p
            for p in o.failing
        ]
    outcomes += run_suite(
        class_table(manifest["folder"], FOLDERS), folder_expectations(rules), name="trigger-folders", id_column="label"
    )
    report = ValidationReport(str(root), outcomes, len(manifest))
    if not report.success:
        raise DataValidationError(report)
    return report, manifest


def load_raw_data(root: str | Path) -> dict[str, list[np.ndarray]]:
    """folder -> its recordings as mono float32 arrays, in file-name order."""
    root = Path(root)
    return {
        folder: [to_mono(read_wav(p)[0]).astype(np.float32) for p in sorted((root / folder).glob("*.wav"))]
        for folder in FOLDERS
    }


# --- mixing clips ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixSettings:
    clip_samples: int
    rate: int
    max_activates: int = 2
    max_negatives: int = 2
    background_rms: tuple[float, float] = (0.005, 0.05)
    word_peak: tuple[float, float] = (0.3, 0.9)


def _place(rng: np.random.Generator, length: int, clip: int, taken: list[tuple[int, int]]) -> int | None:
    """A start at which ``length`` samples overlap nothing in ``taken``, or None (the course retries too)."""
    for _ in range(50):
        start = int(rng.integers(0, clip - length)) if clip > length else 0
        if all(start + length <= a or start >= b for a, b in taken):
            return start
    return None


def mix_clips(
    words: dict[str, list[np.ndarray]], count: int, mix: MixSettings, seed: int
) -> tuple[np.ndarray, list[list[float]]]:
    """``count`` int16 clips (count, clip_samples) and, per clip, the times (s) at which each trigger ends."""
    rng = np.random.default_rng(seed)
    clips = np.zeros((count, mix.clip_samples), np.int16)
    ends: list[list[float]] = []
    for i in range(count):
        background = words["backgrounds"][int(rng.integers(len(words["backgrounds"])))]
        offset = int(rng.integers(0, len(background) - mix.clip_samples + 1))
        clip = background[offset : offset + mix.clip_samples].astype(np.float64)
        clip *= rng.uniform(*mix.background_rms) / max(float(np.sqrt(np.mean(clip**2))), 1e-9)
        taken, clip_ends = [], []
        kinds = ["activates"] * int(rng.integers(0, mix.max_activates + 1)) + ["negatives"] * int(
            rng.integers(0, mix.max_negatives + 1)
        )
        for kind in rng.permutation(kinds) if kinds else []:
            word = words[str(kind)][int(rng.integers(len(words[str(kind)])))][: mix.clip_samples]
            start = _place(rng, len(word), mix.clip_samples, taken)
            if start is None:
                continue
            taken.append((start, start + len(word)))
            clip[start : start + len(word)] += word * (
                rng.uniform(*mix.word_peak) / max(float(np.abs(word).max()), 1e-9)
            )
            if kind == "activates":
                clip_ends.append((start + len(word)) / mix.rate)
        clips[i] = to_int16(clip)
        ends.append(sorted(clip_ends))
    return clips, ends


# --- the offline sample ----------------------------------------------------------------------------------------


def espeak_executable() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise RuntimeError(
            "the trigger-word sample speaks its words with espeak-ng, which is not installed: "
            "install the Debian package `espeak-ng` (sudo apt-get install -y espeak-ng; `make "
            "system-deps` does it), or put real recordings in activates/, negatives/, backgrounds/"
        )
    return found


def speak(word: str, voice: str, speed: int, pitch: int, rate: int) -> np.ndarray:
    """espeak-ng's rendering of ``word`` as mono float32 at ``rate`` Hz, silence at both ends trimmed."""
    from scipy.signal import resample_poly

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "word.wav"
        subprocess.run(
            [espeak_executable(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), word],
            check=True,
            capture_output=True,
        )
        samples, source_rate, _ = read_wav(out)
    x = to_mono(samples).astype(np.float64)
    loud = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())
    x = x[max(loud[0] - 80, 0) : loud[-1] + 80] if len(loud) else x
    g = np.gcd(rate, source_rate)
    return resample_poly(x, rate // g, source_rate // g).astype(np.float32)


def coloured_noise(rng: np.random.Generator, n: int, exponent: float, rate: int, hum_hz: float) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown), plus a faint mains hum."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / rate)
    spectrum *= 1 / np.maximum(f, 20.0) ** (exponent / 2)
    x = np.fft.irfft(spectrum, n)
    x /= np.abs(x).max()
    x += 0.1 * np.sin(2 * np.pi * hum_hz * np.arange(n) / rate)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def write_sample(
    out_dir: str | Path,
    rate: int = 16000,
    activates: int = 36,
    negatives: int = 48,
    backgrounds: int = 6,
    background_seconds: float = 6.0,
    seed: int = 3,
) -> dict[str, int]:
    """The offline raw_data folder: espeak-ng words in voice x speed x pitch variations, and coloured noise."""
    out = Path(out_dir)
    combos = [(v, s, p) for v in VOICES for s in SPEEDS for p in PITCHES]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(combos))
    for folder in FOLDERS:
        (out / folder).mkdir(parents=True, exist_ok=True)
    for i in range(activates):
        voice, speed, pitch = combos[order[i % len(combos)]]
        (out / "activates" / f"{i:03d}_{voice.replace('+', '-')}_{speed}_{pitch}.wav").write_bytes(
            encode_wav(speak(TRIGGER, voice, speed, pitch, rate), rate)
        )
    for i in range(negatives):
        voice, speed, pitch = combos[order[(activates + i) % len(combos)]]
        word = NEGATIVE_WORDS[i % len(NEGATIVE_WORDS)]
        (out / "negatives" / f"{i:03d}_{word}_{voice.replace('+', '-')}_{speed}_{pitch}.wav").write_bytes(
            encode_wav(speak(word, voice, speed, pitch, rate), rate)
        )
    for i in range(backgrounds):
        noise = coloured_noise(
            rng, int(background_seconds * rate), exponent=(0.0, 1.0, 2.0)[i % 3], rate=rate, hum_hz=(50.0, 60.0)[i % 2]
        )
        (out / "backgrounds" / f"noise_{i:02d}.wav").write_bytes(encode_wav(noise, rate))
    return {"activates": activates, "negatives": negatives, "backgrounds": backgrounds}
