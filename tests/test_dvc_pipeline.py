"""`dvc repro` runs each project's stage; a second `dvc repro` does nothing; a params change reruns only it.

dvc.yaml is generated (flows/stages.py; tests/test_dvc_yaml.py checks the committed file is the generator's): a
stage's code deps are the modules its run imports, so editing one project's module touches that project's stage only.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def dvc(root, *args):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    # The session's server (prefect_server), so no stage starts a background server that outlives the tests.
    env["PREFECT_API_URL"] = PREFECT_API_URL.value() or ""
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def copy_code(root):
    for name in ("components", "flows"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))


def stage_deps(root):
    from flows.stages import code_deps, module_files, project_modules

    modules, projects = module_files(root), project_modules(root)
    return {name: set(code_deps(root, module, modules)) for name, module in projects.items()}


def test_a_project_module_is_a_dep_of_its_own_stage_and_of_those_that_import_it_only():
    deps = stage_deps(REPO)
    assert {p for p, d in deps.items() if "components/projects/linear_regression.py" in d} == {"linear-regression"}
    # face-mask-transfer builds on FaceMask (its sample and validation), so it re-runs when face_mask.py changes
    assert {p for p, d in deps.items() if "components/projects/face_mask.py" in d} == {
        "face-mask",
        "face-mask-transfer",
    }
    assert all("flows/pipeline.py" in d and "components/settings.py" in d for d in deps.values())
    assert not any("flows/commands/sweep.py" in d or "flows/stages.py" in d for d in deps.values())


def test_what_the_served_models_loader_imports_is_a_dep_of_every_stage():
    # MLflow loads pyfunc_model.py by path when registration checks the model; the unpickler it imports decides
    # whether the registered model loads, so a change to it must re-run every stage.
    assert all("components/serving/legacy.py" in d for d in stage_deps(REPO).values())


def test_a_new_import_in_one_project_module_changes_only_that_stage(tmp_path):
    copy_code(tmp_path)
    before = stage_deps(tmp_path)
    module = tmp_path / "components" / "projects" / "linear_regression.py"
    module.write_text(
        module.read_text() + "\n\ndef _later():\n    from components.scratch import debias  # noqa: F401\n"
    )
    after = stage_deps(tmp_path)
    changed = {p for p in before if before[p] != after[p]}
    assert changed == {"linear-regression"}
    added = after["linear-regression"] - before["linear-regression"]
    assert "components/scratch/debias.py" in added and not before["linear-regression"] - after["linear-regression"]


def test_repro_twice_second_does_nothing(prefect_server, tmp_path, sample_data):
    root = tmp_path / "repo"
    root.mkdir()
    copy_code(root)
    shutil.copytree(sample_data("face-mask"), root / "data" / "face-mask")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = params["projects"]["face-mask"]
    section["train"]["epochs"] = 2
    section.pop("conformal", None), section.pop("active_learning", None)
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params["defaults"], "projects": {"face-mask": section}})
    )
    stages = subprocess.run(
        [sys.executable, "-m", "flows.cli", "stages", "--write", "--root", str(root)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
    )
    assert stages.returncode == 0, stages.stderr  # this root's dvc.yaml: its one project

    dvc(root, "init", "--no-scm", "-q")
    first = dvc(root, "repro")
    assert "Running stage 'run-face-mask'" in first
    assert (root / "outputs" / "face-mask" / "metrics.json").exists()
    assert "f1" in dvc(root, "metrics", "show")  # metrics.json holds the headline: face-mask's primary metric
    registered = root / "outputs" / "face-mask" / "model" / "registered.json"
    first_version = json.loads(registered.read_text())["version"]  # the session's store may hold other versions

    second = dvc(root, "repro")
    assert "Running stage" not in second
    assert "up to date" in second

    other = root / "components" / "projects" / "linear_regression.py"  # another project's module
    other.write_text(other.read_text() + "\n# edited\n")
    assert "up to date" in dvc(root, "status")
    own = root / "components" / "projects" / "face_mask.py"
    own.write_text(own.read_text() + "\n# edited\n")
    status = dvc(root, "status")
    assert "run-face-mask" in status and "components/projects/face_mask.py" in status
    own.write_text(own.read_text().removesuffix("\n# edited\n"))

    section["train"]["epochs"] = 1  # a params change re-runs the stage
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params["defaults"], "projects": {"face-mask": section}})
    )
    assert "Running stage 'run-face-mask'" in dvc(root, "repro")
    second_version = json.loads(registered.read_text())["version"]
    assert int(second_version) > int(first_version)

    # Revert the change: DVC restores the first run's outputs from its run cache and runs nothing, so the
    # registry's `challenger` (version 2, the epochs=1 run) no longer matches outputs/ (version 1's model).
    section["train"]["epochs"] = 2
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params["defaults"], "projects": {"face-mask": section}})
    )
    restored = dvc(root, "repro")
    assert "Running stage" not in restored  # restored, not re-run
    recorded = json.loads((root / "outputs" / "face-mask" / "model" / "registered.json").read_text())
    assert recorded["version"] == first_version
    sync = subprocess.run(
        [sys.executable, "-m", "flows.cli", "sync", "--root", str(root)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
    )
    assert sync.returncode == 0, sync.stderr
    assert f"challenger re-pointed from version {second_version} to {first_version}" in sync.stdout
    from mlflow.tracking import MlflowClient

    from components.tracking import runs as tracking

    tracking.configure(root)
    assert str(MlflowClient().get_registered_model("face-mask").aliases["challenger"]) == first_version

    # A scheduled retrain (retrain-and-promote, what the cron deployment runs) goes through the same stage, so
    # DVC records it: afterwards `dvc status` is clean and the gate judged the version the outputs hold.
    from flows.promotion import retrain_and_promote

    section["train"]["epochs"] = 3
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params["defaults"], "projects": {"face-mask": section}})
    )
    result = retrain_and_promote(project="face-mask", root=str(root))
    third_version = str(int(second_version) + 1)
    assert result["pipeline"]["version"] == third_version
    assert result["promotion"]["candidate"] == third_version
    assert "up to date" in dvc(root, "status")
