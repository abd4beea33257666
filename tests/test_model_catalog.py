"""components/models/catalog.py reads what a builder takes from its source (ast), so `dlfolio check` needs no
torch; this checks it reads what the imported builder says, for every builder."""

from __future__ import annotations

import inspect
import typing

import pytest

from components.models import BUILDERS, FROM_THE_DATA
from components.models.catalog import BACKBONE_MIN_SIZES, BUILDER_PATHS, builder_arguments, builder_name

pytestmark = pytest.mark.unit


def imported_arguments(builder: type) -> dict[str, tuple[object, object]]:
    """What builder_arguments did before the catalog: the signature and type hints of the imported class."""
    hints = typing.get_type_hints(builder.__init__)
    return {
        p.name: (hints.get(p.name, inspect.Parameter.empty), p.default)
        for p in inspect.signature(builder).parameters.values()
        if p.name not in FROM_THE_DATA and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


@pytest.mark.parametrize("name", sorted(BUILDER_PATHS))
def test_the_source_reading_equals_the_signature_of_the_imported_builder(name):
    assert builder_arguments(name) == imported_arguments(BUILDERS[name])
    assert builder_name(name) == BUILDERS[name].__name__


def test_every_transfer_backbone_has_its_minimum_input_size():
    from components.models.transfer import BACKBONES

    assert {name: spec.min_size for name, spec in BACKBONES.items()} == BACKBONE_MIN_SIZES
