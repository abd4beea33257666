"""benchmarks/results_md.py: a benchmark rewrites its own section of RESULTS.md and leaves the others alone."""

from __future__ import annotations

import pytest

from benchmarks.results_md import write_section

pytestmark = pytest.mark.unit

RESULTS = "# Benchmark results\n\n## A\nold a\n\n### A detail\nkept with A\n\n## B\nb stays\n"


def test_a_section_is_replaced_up_to_the_next_top_level_heading(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS)
    write_section(path, "## A", "## A\nnew a\n")
    assert path.read_text() == "# Benchmark results\n\n## A\nnew a\n\n## B\nb stays\n"


def test_the_last_section_is_replaced_to_the_end_and_a_new_one_appended(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS)
    write_section(path, "## B", "## B\nb again\n")
    write_section(path, "## C", "## C\nc\n")
    assert path.read_text().endswith("## B\nb again\n\n## C\nc\n")
    assert "### A detail\nkept with A" in path.read_text()


def test_rewriting_a_section_with_its_own_text_changes_nothing(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS)
    write_section(path, "## A", "## A\nold a\n\n### A detail\nkept with A\n")
    assert path.read_text() == RESULTS
