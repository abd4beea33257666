"""Every test has exactly one tier: the collection hook in tests/conftest.py refuses a suite where one has none
or two, so `make test-fast` can never silently drop a test nor count one twice."""

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO, TIERS

pytestmark = pytest.mark.unit


def collect(tmp_path, body: str) -> subprocess.CompletedProcess:
    # A throwaway suite that uses this repository's hook and markers, collected by a real pytest process.
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n")
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\naddopts = --strict-markers\nmarkers =\n" + "".join(f"    {tier}: tier\n" for tier in TIERS)
    )
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "unit", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


def test_one_tier_per_test_collects(tmp_path):
    done = collect(
        tmp_path,
        """
        import pytest
        pytestmark = pytest.mark.unit
        def test_a(): pass
        @pytest.mark.parametrize("x", [1, 2])
        def test_b(x): pass
    """,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 tests collected" in done.stdout


def test_a_test_without_a_tier_or_with_two_fails_collection_naming_it(tmp_path):
    # -m unit would deselect test_none: the hook must see it before the selection does.
    done = collect(
        tmp_path,
        """
        import pytest
        @pytest.mark.unit
        def test_fine(): pass
        def test_none(): pass
        @pytest.mark.unit
        @pytest.mark.e2e
        def test_both(): pass
    """,
    )
    assert done.returncode != 0
    report = done.stdout + done.stderr
    assert "test_suite.py::test_none: no tier" in report
    assert "test_suite.py::test_both: e2e, unit" in report
    assert "test_fine" not in report.split("exactly one tier")[-1]
