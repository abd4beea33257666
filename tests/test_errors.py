"""Expected user errors share one base class, and the CLI reports each one once: one message, no traceback, exit 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.errors import DataFormatError, DlfolioError
from tests.conftest import REPO

EXPECTED_ERRORS = [  # (module, class, the built-in base callers may still catch)
    ("components.settings", "SettingsError", ValueError),
    ("components.validation.expectations", "DataValidationError", ValueError),
    ("components.data.formats.images", "MissingDataError", FileNotFoundError),
    ("components.data.formats.arrays", "ArrayFormatError", ValueError),
    ("components.data.formats.midi_melodies", "MidiReadError", ValueError),
    ("components.models.transfer", "WeightsNotFoundError", FileNotFoundError),
    ("components.projects", "UnknownProjectError", LookupError),
    ("components.tracking.sweep", "SweepError", ValueError),
    ("components.tracking.registry", "RegistryError", LookupError),
    ("components.active.labels", "LabelFileError", ValueError),
    ("components.conformal.calibration", "CalibrationOverlapError", ValueError),
    ("components.errors", "BusyError", RuntimeError),
    ("components.errors", "TrainingDiverged", ArithmeticError),
]


@pytest.mark.unit
@pytest.mark.parametrize(("module", "name", "builtin"), EXPECTED_ERRORS, ids=[e[1] for e in EXPECTED_ERRORS])
def test_every_expected_error_is_a_dlfolio_error_and_keeps_its_builtin_base(module, name, builtin):
    import importlib

    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, DlfolioError) and issubclass(cls, builtin)


@pytest.mark.unit
def test_a_file_in_the_wrong_format_is_a_dlfolio_error_naming_the_file(tmp_path):
    from components.data.formats.idx import read_idx

    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"not an idx file at all")
    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte: not an IDX file"):
        read_idx(path)


def dlfolio(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed `dlfolio` script in a subprocess, on this checkout's code."""
    script = Path(sys.executable).with_name("dlfolio")
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=full_env, timeout=600)


@pytest.mark.unit
def test_an_unknown_project_is_one_line_and_exit_2():
    done = dlfolio("run", "no-such-project")
    assert done.returncode == 2
    assert done.stderr.startswith("dlfolio: error: unknown project 'no-such-project'; known projects: ")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.integration
def test_a_corrupt_png_prints_one_message_without_traceback_and_leaves_nothing(prefect_server, project_root):
    """The real CLI against the real Prefect server: Prefect's own task and flow failure records (two tracebacks
    and four copies of the message) stay off the terminal; the MLflow run still ends FAILED with the reason."""
    from mlflow.tracking import MlflowClient
    from prefect.settings import PREFECT_API_URL

    root = project_root("face-mask", {"train": {"epochs": 1}}, copy_data=True)
    (root / "data" / "face-mask" / "with_mask" / "face900_0.png").write_bytes(b"garbage")
    client = MlflowClient()
    before = {v.version for v in client.search_model_versions("name='face-mask'")}

    done = dlfolio("run", "face-mask", "--root", str(root), env={"PREFECT_API_URL": PREFECT_API_URL.value()})
    output = done.stdout + done.stderr

    assert done.returncode == 2
    assert "Traceback" not in output
    assert output.count("data validation failed") == 1
    assert output.count("-> with_mask/face900_0.png") == 1  # the offending file, named once
    assert output.count("expect_column_values_to_be_in_set(decodable) failed: file must decode as an image") == 1
    message = done.stderr[done.stderr.index("dlfolio: error: ") :].splitlines()
    assert message[0] == "dlfolio: error: data validation failed"
    assert "1 of 9 expectations failed" in message[1] and "with_mask/face900_0.png (cannot decode" in message[2]
    assert len(output.splitlines()) <= 6, output  # Prefect's "Beginning flow run" line, perhaps its UI link, ours

    experiment = client.get_experiment_by_name("face-mask")
    [last] = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    assert last.info.status == "FAILED" and "face900_0.png" in last.data.tags["failure"]
    assert last.data.tags["project"] == "face-mask" and "data/face-mask" in last.data.tags["failure"]
    assert str(root) not in last.data.tags["failure"]  # the path relative to the project root
    assert {v.version for v in client.search_model_versions("name='face-mask'")} == before
    assert not (root / "outputs" / "face-mask").exists() and not list((root / "outputs").glob(".face-mask.*"))


@pytest.mark.integration
def test_a_diverged_run_says_at_which_epoch_and_exits_2(prefect_server, project_root):
    """Today an LR far too high trains on in NaN until a metric fails with "Input contains NaN"."""
    from prefect.settings import PREFECT_API_URL

    root = project_root("linear-regression", {"train": {"lr": 100.0, "epochs": 300}})
    done = dlfolio("run", "linear-regression", "--root", str(root), env={"PREFECT_API_URL": PREFECT_API_URL.value()})
    output = done.stdout + done.stderr

    assert done.returncode == 2, output
    assert "dlfolio: error: training diverged at epoch " in done.stderr and "(loss " in done.stderr
    assert "Input contains NaN" not in output
