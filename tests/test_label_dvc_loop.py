"""The human loop closes through DVC: export -> a person fills in labels -> import writes them into the dataset
-> `dvc add data` -> `dvc repro` trains on them and registers a new version.

A copy of the repository's code with the face-mask sample; 12 of its images (6 a class) are moved out into an
unlabelled folder under another name, as images nobody has labelled yet, so the pipeline first trains without
them and the labeller's answers bring them back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO
from tests.test_dvc_pipeline import copy_code, dvc

pytestmark = pytest.mark.e2e

UNLABELLED = "data/face-mask-unlabelled"


def cli(root, *args):
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args, "--root", str(root)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
    )


def dataset_files(root):
    return sorted(
        p.relative_to(root / "data" / "face-mask").as_posix() for p in (root / "data" / "face-mask").rglob("*.png")
    )


def test_imported_labels_go_into_the_dataset_and_the_next_repro_trains_on_them(prefect_server, tmp_path, sample_data):
    root = tmp_path / "repo"
    root.mkdir()
    copy_code(root)
    shutil.copytree(sample_data("face-mask"), root / "data" / "face-mask")
    truth = {}
    (root / UNLABELLED).mkdir()
    for c, cls in enumerate(("with_mask", "without_mask")):
        for i, path in enumerate(sorted((root / "data" / "face-mask" / cls).glob("*.png"))[:6]):
            name = f"face{900 + 2 * i + c}_0.png"  # a new face (data.group_pattern); the name hides its class
            shutil.move(path, root / UNLABELLED / name)
            truth[f"unlabelled/{name}"] = cls
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = params["projects"]["face-mask"]
    section["train"]["epochs"] = 1
    section.pop("conformal", None)
    section.pop("schedule", None)
    section["active_learning"] = {
        "strategies": ["margin"],
        "initial_size": 10,
        "query_size": 12,
        "rounds": 1,
        "epochs": 1,
        "unlabelled_dir": UNLABELLED,
    }
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params["defaults"], "projects": {"face-mask": section}})
    )
    assert cli(root, "stages", "--write").returncode == 0
    dvc(root, "init", "--no-scm", "-q")
    dvc(root, "add", "data")
    assert "Running stage 'run-face-mask'" in dvc(root, "repro")
    first = json.loads((root / "outputs" / "face-mask" / "metrics_all.json").read_text())  # split sizes
    first_version = int(
        json.loads((root / "outputs" / "face-mask" / "model" / "registered.json").read_text())["version"]
    )
    before = dataset_files(root)
    data_dvc = (root / "data.dvc").read_text()

    exported = cli(root, "label", "export", "face-mask")
    assert exported.returncode == 0, exported.stderr
    queries = pd.read_csv(root / "labels" / "face-mask" / "queries.csv", dtype=str, keep_default_na=False)
    assert sorted(queries["item"]) == sorted(truth)  # the pool is the unlabelled folder, all 12 asked for

    # A bad file is refused, naming its lines, and nothing is written
    bad = queries.assign(label=[truth[i] for i in queries["item"]])
    bad.loc[2, "label"] = '=HYPERLINK("x")'  # a formula cell: not a class
    bad.loc[4, "item"] = "../../etc/passwd"  # traversal: not a queried item
    bad.to_csv(tmp_path / "bad.csv", index=False)
    refused = cli(root, "label", "import", "face-mask", str(tmp_path / "bad.csv"))
    assert refused.returncode == 2
    assert "line 4: label" in refused.stderr and "line 6: unknown item '../../etc/passwd'" in refused.stderr
    assert dataset_files(root) == before and len(list((root / UNLABELLED).iterdir())) == 12
    (tmp_path / "binary.csv").write_bytes(b"item,label\n\xff\xfe\x00\x01")
    assert cli(root, "label", "import", "face-mask", str(tmp_path / "binary.csv")).returncode == 2
    assert dataset_files(root) == before

    answers = queries.assign(label=[truth[i] for i in queries["item"]])
    answers.to_csv(tmp_path / "answers.csv", index=False)
    imported = cli(root, "label", "import", "face-mask", str(tmp_path / "answers.csv"))
    assert imported.returncode == 0, imported.stderr
    assert "wrote 12 labelled file(s)" in imported.stdout
    after = dataset_files(root)
    assert sorted(set(after) - set(before)) == sorted(f"{cls}/{item.split('/')[1]}" for item, cls in truth.items())
    assert not list((root / UNLABELLED).iterdir())  # moved, not copied: the pool is empty now

    assert "changed" in dvc(root, "status")  # DVC sees the new data
    dvc(root, "add", "data")
    assert (root / "data.dvc").read_text() != data_dvc  # versioned: a new hash of data/
    assert "Running stage 'run-face-mask'" in dvc(root, "repro")
    second = json.loads((root / "outputs" / "face-mask" / "metrics_all.json").read_text())  # split sizes
    second_version = int(
        json.loads((root / "outputs" / "face-mask" / "model" / "registered.json").read_text())["version"]
    )
    assert second_version == first_version + 1
    split = ("train.train", "train.val", "train.test")
    assert sum(second[k] for k in split) == sum(first[k] for k in split) + 12  # the 12 new items are in the data
    assert second["train.train"] > first["train.train"]  # and the training split grew

    from mlflow.tracking import MlflowClient

    from components.tracking import runs as tracking

    tracking.configure(root)
    client = MlflowClient()
    runs = [
        client.get_run(client.get_model_version("face-mask", str(v)).run_id) for v in (first_version, second_version)
    ]
    assert runs[0].data.tags["data.md5"] != runs[1].data.tags["data.md5"]
    assert runs[0].data.tags["dvc.data_md5"] != runs[1].data.tags["dvc.data_md5"]
