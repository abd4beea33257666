"""The committed dvc.yaml is the one flows/stages.py generates: a new module a stage imports is in its deps.

In the fast tier (about 3 s), so a change that adds a module under components/ is caught before `make test`.
"""

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.unit


def test_committed_dvc_yaml_is_the_generated_one():
    from flows.stages import render

    assert (REPO / "dvc.yaml").read_text() == render(REPO), "dvc.yaml is stale: run `dlfolio stages --write`"
