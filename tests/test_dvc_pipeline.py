"""`dvc repro` runs each project's stage; a second `dvc repro` does nothing; a params change reruns only it."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def dvc(root, *args):
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_repro_twice_second_does_nothing(tmp_path, sample_data):
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("components", "flows"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root)
    shutil.copytree(sample_data("face-mask"), root / "data" / "face-mask")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = params["projects"]["face-mask"]
    section["train"]["epochs"] = 2
    section.pop("conformal", None), section.pop("active_learning", None)
    (root / "params.yaml").write_text(yaml.safe_dump({"defaults": params["defaults"], "projects": {"face-mask": section}}))

    dvc(root, "init", "--no-scm", "-q")
    first = dvc(root, "repro")
    assert "Running stage 'run@face-mask'" in first
    assert (root / "outputs" / "face-mask" / "metrics.json").exists()
    assert "accuracy" in dvc(root, "metrics", "show")

    second = dvc(root, "repro")
    assert "Running stage" not in second
    assert "up to date" in second

    section["train"]["epochs"] = 1  # a params change re-runs the stage
    (root / "params.yaml").write_text(yaml.safe_dump({"defaults": params["defaults"], "projects": {"face-mask": section}}))
    assert "Running stage 'run@face-mask'" in dvc(root, "repro")
