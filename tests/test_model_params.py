"""count_parameters: the figure every project reports as its ``parameters`` info."""

from __future__ import annotations

import pytest
from torch import nn

from components.models.params import count_parameters

pytestmark = pytest.mark.unit


def test_counts_weights_and_biases_of_every_layer():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert count_parameters(net) == (3 * 4 + 4) + (4 * 2 + 2)


def test_frozen_layers_count_unless_only_trainable_ones_are_asked_for():
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    net[0].requires_grad_(False)
    assert count_parameters(net) == 26
    assert count_parameters(net, trainable_only=True) == 4 * 2 + 2


def test_tied_weights_count_once():
    embed, head = nn.Embedding(10, 5), nn.Linear(5, 10, bias=False)
    head.weight = embed.weight
    assert count_parameters(nn.ModuleList([embed, head])) == 50
