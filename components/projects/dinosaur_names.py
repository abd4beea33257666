"""dinosaur-names: the course's character-level dinosaur-name generator, on numpy-rnn's NumPy RNN/GRU/LSTM code
[seed 003].

Real format: ``<data_dir>/dinos.txt``, one name per line (the course's file of about 1500 genus names).
Offline sample: the 36 real dinosaur genus names WordNet holds (components/data/samples/dinosaurs.py), a
small list: a GRU, held-out names and the full a-z alphabet (a test name may hold a letter no training name
has) make it learnable. Everything else, the baselines, sampling, clipping, novelty and the served model, is
numpy-rnn's.
"""

from __future__ import annotations

from pathlib import Path

from components.data.samples import dinosaurs
from components.projects.numpy_rnn import NumpyRNN
from components.projects.settings.dinosaur_names import CAPABILITIES, DinoDataSettings, DinosaurNamesSettings


class DinosaurNames(NumpyRNN):
    name = "dinosaur-names"
    capabilities = CAPABILITIES
    summary = "Dinosaur-name generator: NumPy GRU/LSTM/RNN char model, clipping, temperature sampling (dinos.txt)"
    Settings = DinosaurNamesSettings
    example_prefixes = ("", "tyr", "velo")

    def make_sample(self, out_dir: Path) -> dict:
        return dinosaurs.generate(out_dir, DinoDataSettings().file)
