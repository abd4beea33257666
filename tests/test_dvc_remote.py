"""data/ is versioned by data.dvc; `dvc push` and `dvc pull` round-trip it through the local-directory remote."""

import hashlib
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def dvc(root, *args):
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def digest(root):
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_repository_remote_is_a_local_directory_inside_the_repo():
    config = (REPO / ".dvc" / "config").read_text()
    assert "remote = local" in config and "url = ../.dvc-remote" in config
    assert ".dvc-remote/" in (REPO / ".gitignore").read_text()


def test_push_then_pull_restores_the_data_in_a_fresh_checkout(tmp_path, sample_data):
    root = tmp_path / "repo"
    shutil.copytree(sample_data("face-mask"), root / "data" / "face-mask")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc(root, "init", "-q")
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")  # the repository's remote settings
    dvc(root, "add", "data", "-q")
    dvc(root, "push", "-q")
    original = digest(root / "data")

    shutil.rmtree(root / "data")
    shutil.rmtree(root / ".dvc" / "cache")
    dvc(root, "pull", "-q")
    assert digest(root / "data") == original
    assert "up to date" in dvc(root, "status").lower() or dvc(root, "status").strip() == ""
