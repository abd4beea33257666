"""Log-mel spectrograms with torch.stft and a mel filterbank written in NumPy (torchaudio is not installed).

    features = log_mel(waves, LogMel(rate=16000))   # (N, samples) -> (N, mels, frames)

A frame every ``hop`` samples (10 ms at 16 kHz), ``n_fft``-sample Hann windows (25 ms), ``center=True`` so
frame t is centred on sample t * hop: a clip of S samples gives 1 + S // hop frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LogMel:
    rate: int = 16000
    n_fft: int = 400
    hop: int = 160
    mels: int = 64
    f_min: float = 20.0
    f_max: float | None = None  # None: the Nyquist frequency

    def frames(self, samples: int) -> int:
        return 1 + samples // self.hop


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(rate: int, n_fft: int, mels: int, f_min: float = 0.0, f_max: float | None = None) -> np.ndarray:
    """(mels, n_fft // 2 + 1) triangular filters, evenly spaced on the HTK mel scale, each peaking at 1."""
    f_max = rate / 2 if f_max is None else f_max
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), mels + 2))
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0, None).astype(np.float32)


def log_mel(waves: torch.Tensor | np.ndarray, config: LogMel) -> torch.Tensor:
    """(N, samples) float waves in [-1, 1] (or int16) -> (N, mels, frames) log mel power, float32."""
    x = torch.as_tensor(np.asarray(waves))
    x = x.float() / 32768 if x.dtype == torch.int16 else x.float()
    spec = torch.stft(
        x.reshape(-1, x.shape[-1]),
        config.n_fft,
        config.hop,
        window=torch.hann_window(config.n_fft),
        center=True,
        return_complex=True,
    )
    bank = torch.from_numpy(mel_filterbank(config.rate, config.n_fft, config.mels, config.f_min, config.f_max))
    return torch.log(bank @ spec.abs().pow(2) + 1e-6)
