"""`dlfolio data` never overwrites a user's data: it writes a sample only into a missing or empty directory,
or over exactly a sample it wrote before; `--force` overwrites and lists what it replaced.

On main d432da5 `make run` (which calls `dlfolio data`) deleted a user's photo in data/face-mask/ and
overwrote their temperatures.csv.
"""

from __future__ import annotations

import json

import pytest

from components.data.samples.writer import file_hashes

pytestmark = pytest.mark.unit

PROJECT = "linear-regression"  # a 160-row CSV: the cheapest sample


def data(run_cli, root, *extra):
    code, out, err = run_cli("data", PROJECT, "--data-root", str(root / "data"), *extra)
    assert code == 0, err
    return out


def test_a_users_files_survive_and_force_replaces_them_naming_each(run_cli, tmp_path):
    folder = tmp_path / "data" / PROJECT
    folder.mkdir(parents=True)
    (folder / "temperatures.csv").write_text("celsius,fahrenheit\n0,32\n100,212\n")  # the user's own readings
    (folder / "my_photo.png").write_bytes(b"\x89PNG user")
    out = data(run_cli, tmp_path)
    assert (folder / "temperatures.csv").read_text() == "celsius,fahrenheit\n0,32\n100,212\n"
    assert (folder / "my_photo.png").read_bytes() == b"\x89PNG user"
    assert "left as it is" in out and "temperatures.csv" in out and "my_photo.png" in out and "--force" in out

    out = data(run_cli, tmp_path, "--force")
    assert "--force" in out and "2 path(s): my_photo.png, temperatures.csv" in out
    assert not (folder / "my_photo.png").exists() and "100,212" not in (folder / "temperatures.csv").read_text()
    assert "unchanged" in data(run_cli, tmp_path)  # now it is the sample


def test_the_manifest_lives_outside_data(run_cli, tmp_path):
    assert "wrote" in data(run_cli, tmp_path)
    folder = tmp_path / "data" / PROJECT
    assert not any(p.name.startswith(".") for p in folder.rglob("*"))  # nothing extra inside data/ (data.dvc)
    manifest = tmp_path / ".dlfolio" / "samples" / f"{PROJECT}.json"
    assert json.loads(manifest.read_text())["files"] == file_hashes(folder)
    assert [p.name for p in manifest.parent.iterdir()] == [manifest.name]  # no scratch left behind


def test_the_same_sample_is_left_untouched_and_a_previous_sample_is_replaced(run_cli, tmp_path):
    data(run_cli, tmp_path)
    folder = tmp_path / "data" / PROJECT
    sample = file_hashes(folder)
    mtime = (folder / "temperatures.csv").stat().st_mtime_ns
    (tmp_path / ".dlfolio" / "samples" / f"{PROJECT}.json").unlink()  # as after `dvc pull`: no manifest
    assert "unchanged" in data(run_cli, tmp_path)
    assert (folder / "temperatures.csv").stat().st_mtime_ns == mtime  # not even rewritten

    # What an older generator wrote (and recorded): replaced without --force.
    (folder / "temperatures.csv").write_text("celsius,fahrenheit\n1,33.8\n")
    manifest = tmp_path / ".dlfolio" / "samples" / f"{PROJECT}.json"
    manifest.write_text(json.dumps({"files": file_hashes(folder)}))
    assert "replaced the previous sample" in data(run_cli, tmp_path)
    assert file_hashes(folder) == sample


def test_an_empty_directory_gets_the_sample(run_cli, tmp_path):
    (tmp_path / "data" / PROJECT).mkdir(parents=True)
    assert "wrote" in data(run_cli, tmp_path)
    assert (tmp_path / "data" / PROJECT / "temperatures.csv").exists()
