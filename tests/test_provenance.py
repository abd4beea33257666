"""A run's `git.dirty` says whether the source it ran differed from the commit, not whether DVC or the
pipeline rewrote their own results (dvc.lock, outputs/): after `make run` rewrote dvc.lock, 24 of 25 registered
models were tagged dirty."""

from __future__ import annotations

import subprocess

import pytest

from components.tracking.runs import git_commit

pytestmark = pytest.mark.unit


def git(root, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "outputs" / "p").mkdir(parents=True)
    for path in ("model.py", "dvc.lock", "outputs/p/metrics.json", "params.yaml"):
        (tmp_path / path).write_text("v1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    return tmp_path


def test_a_clean_tree_is_not_dirty_and_names_its_commit(repo):
    sha, dirty = git_commit(repo)
    assert len(sha) == 40 and not dirty


def test_what_dvc_and_the_pipeline_rewrite_does_not_make_it_dirty(repo):
    (repo / "dvc.lock").write_text("v2\n")
    (repo / "outputs" / "p" / "metrics.json").write_text("v2\n")
    (repo / "notes.txt").write_text("untracked\n")
    assert git_commit(repo)[1] is False


@pytest.mark.parametrize("path", ["model.py", "params.yaml"])
def test_a_changed_source_or_config_file_does(repo, path):
    (repo / path).write_text("v2\n")
    assert git_commit(repo)[1] is True


def test_outside_git_the_commit_is_unknown(tmp_path):
    assert git_commit(tmp_path) == ("unknown", False)
