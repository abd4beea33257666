"""A network's initial weights come from the project's seed, not from torch's start-up state.

fit() seeds torch only once the net exists, and torch's own start-up seed differs from process to process, so
unet-segmentation, jazz-lstm and facial-keypoints, which built their nets unseeded, trained from different
weights on every run of the same commit (mean IoU 0.820 / 0.833, 2.107 / 2.048 nats, RMSE 1.689 / 1.706 px);
the projects that seeded first repeated exactly.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from components.projects import settings_schemas
from components.settings import load_project_settings
from tests.conftest import REPO


def settings(project: str, seed: int = 0):
    return load_project_settings(REPO / "params.yaml", project, settings_schemas(), {"seed": seed})


def build(project: str, seed: int = 0) -> torch.nn.Module:
    if project == "unet-segmentation":
        from components.projects.unet_segmentation import network

        return network(settings(project, seed), num_classes=5)
    if project == "jazz-lstm":
        from components.data.vocab import SPECIALS, Vocab
        from components.projects.jazz_lstm import note_model

        vocab = Vocab(SPECIALS + ("C4/1", "D4/1", "E4/2", "R/1"), "word", lowercase=False)
        return note_model(vocab, settings(project, seed).model, seed)
    from components.projects.facial_keypoints import make_net

    return make_net(settings(project, seed))


def weights(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.state_dict().values() if p.is_floating_point()]


@pytest.mark.unit
@pytest.mark.parametrize("project", ["unet-segmentation", "jazz-lstm", "facial-keypoints"])
def test_the_initial_weights_depend_on_the_seed_alone(project):
    torch.manual_seed(1)
    first = weights(build(project))
    torch.manual_seed(2)  # whatever drew from torch's generator before (another process's start-up seed)
    again = weights(build(project))
    other = weights(build(project, seed=1))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.integration  # two subprocesses that import torch
def test_torch_starts_from_a_different_seed_in_every_process():
    """Why the seed must come first: a fresh process's generator is not the same from run to run."""
    code = "import torch; print(torch.initial_seed())"
    seeds = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout for _ in range(2)}
    assert len(seeds) == 2
