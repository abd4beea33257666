"""The CLI answers `--help` without importing the heavy libraries: torch, Prefect and MLflow load only in the
commands that use them (they cost seconds each; `dlfolio --help` took 7-13 s when flows/cli.py imported torch)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.unit

HEAVY = ("torch", "torchvision", "prefect", "mlflow", "sklearn", "great_expectations", "dask", "distributed", "optuna")
COMMANDS = [
    "projects",
    "data",
    "check",
    "run",
    "promote",
    "models",
    "schedule",
    "ui",
    "label",
    "sweep",
    "stages",
    "server",
    "stack",
    "study",
]

PROBE = """
import sys
from flows.cli import main

try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("HEAVY:" + ",".join(sorted(m for m in {heavy!r} if m in sys.modules)), "EXIT:" + str(code))
"""


def probe(*args: str) -> tuple[str, str]:
    """Run the CLI's main with ``args`` in a fresh interpreter; return (heavy modules it loaded, its exit code)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    last = done.stdout.strip().splitlines()[-1]
    heavy, code = last.split(" ")
    return heavy.removeprefix("HEAVY:"), code.removeprefix("EXIT:")


def test_top_level_help_imports_no_heavy_library():
    assert probe("--help") == ("", "0")


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_imports_no_heavy_library(command):
    assert probe(command, "--help") == ("", "0")


def test_the_installed_script_lists_every_command():
    script = Path(sys.executable).with_name("dlfolio")
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert done.returncode == 0
    for command in COMMANDS:
        assert f"    {command}" in done.stdout


def test_the_installed_script_exits_with_the_commands_code_and_its_message():
    script = Path(sys.executable).with_name("dlfolio")
    done = subprocess.run([str(script), "run", "no-such-project"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.startswith("dlfolio: error: unknown project 'no-such-project'")


CONSOLE_PROBE = """
import atexit, sys
from pathlib import Path
from flows.cli import console

marker = Path(sys.argv[1])
atexit.register(lambda: marker.write_text("drained"))
sys.argv[1:] = ["server", "status"]
console()
"""


def test_the_fast_exit_still_runs_exit_handlers_and_flushes_what_was_printed(tmp_path):
    """console() skips the interpreter's teardown (seconds after a pipeline), not Prefect's or MLflow's drains."""
    marker = tmp_path / "marker"
    done = subprocess.run(
        [sys.executable, "-c", CONSOLE_PROBE, str(marker)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(tmp_path / "prefect")},
    )
    assert done.returncode == 1, done.stderr  # the command's own status: no server runs in that home
    assert marker.read_text() == "drained"
    assert done.stdout == f"no dlfolio Prefect server runs for {tmp_path / 'prefect'}\n"  # printed, then flushed


# `dlfolio check` validates every section with the torch-free settings (components/projects/settings/): none of
# the libraries the projects' code needs is imported (it took 8-12 s when the catalog imported all 25 projects).
CHECK_HEAVY = (*HEAVY, "scipy", "matplotlib", "mapie", "pandas")
CHECK_PROBE = """
import sys
from flows.cli import main

code = main(["check"])
print("HEAVY:" + ",".join(sorted(m for m in {heavy!r} if m in sys.modules)), "EXIT:" + str(code))
"""


def test_check_validates_every_section_without_importing_the_projects_libraries():
    from components.projects import CATALOG

    done = subprocess.run(
        [sys.executable, "-c", CHECK_PROBE.format(heavy=CHECK_HEAVY)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=120,
    )
    *report, last = done.stdout.strip().splitlines()
    assert last == "HEAVY: EXIT:0", done.stderr
    assert report[0].startswith(f"params.yaml: {len(CATALOG)} project section(s) valid: ")
    assert sorted(report[0].split(": ", 2)[2].split(", ")) == sorted(CATALOG)


def test_ui_with_a_tracking_server_prints_that_servers_ui_and_starts_none(run_cli, tmp_path, monkeypatch):
    # A tracking server serves its own UI; `mlflow ui --backend-store-uri http://...` would crash.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999/")
    code, out, err = run_cli("ui", "--root", str(tmp_path))
    assert code == 0, err
    assert "http://127.0.0.1:5999/#/models?workflowType=machine_learning" in out
    assert not (tmp_path / "mlruns").exists()  # no embedded store was made beside it
