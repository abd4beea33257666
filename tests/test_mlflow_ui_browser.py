"""What a person sees in the MLflow UI after a pipeline run: the experiment, the run, its plots, the registered
model with its aliases. `dlfolio ui` serves the store; headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium) reads the pages. Every wait is on page content, never a sleep.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
]


@pytest.fixture(scope="module")
def pipeline_run(prefect_server, sample_data, tmp_path_factory):
    """A real face-mask run (two epochs) whose version holds aliases challenger and champion."""
    import yaml

    from flows.pipeline import project_pipeline

    root = tmp_path_factory.mktemp("ui")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = params["projects"]["face-mask"]
    section.update(data_dir=str(sample_data("face-mask")), train={**section["train"], "epochs": 2})
    section.pop("active_learning", None)  # its rounds are not what is tested here, and they cost minutes
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params.get("defaults", {}), "projects": {"face-mask": section}})
    )
    result = project_pipeline(project="face-mask", root=str(root))
    client = MlflowClient()
    client.set_registered_model_alias("face-mask", "champion", str(result["model_version"]))
    run = client.get_run(result["run_id"])
    plots = sorted(Path(a.path).name for a in client.list_artifacts(run.info.run_id, "plots"))
    assert plots, "the pipeline logged no plots"
    return {"root": root, "run": run, "version": str(result["model_version"]), "plots": plots}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_ui(pipeline_run, tmp_path_factory):
    """`dlfolio ui --port PORT` as a subprocess, on the same store; yields its base URL."""
    port = free_port()
    log = (tmp_path_factory.mktemp("ui-log") / "mlflow-ui.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "ui", "--port", str(port), "--root", str(pipeline_run["root"])],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:  # poll its health endpoint: the server is ready when it answers
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"the MLflow UI did not come up on {url}:\n{log.read()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group: dlfolio, mlflow and its server process
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "the browser test needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def page_shows(driver, url: str, *texts: str, timeout: float = 90) -> str:
    """Open ``url`` and wait until the page's visible text contains every one of ``texts``; return that text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    body = lambda: driver.find_element(By.TAG_NAME, "body").text  # noqa: E731
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda _: all(t in body() for t in texts))
    except TimeoutException:
        missing = [t for t in texts if t not in body()]
        pytest.fail(f"{url} never showed {missing}; it shows:\n{body()[:2000]}")
    return body()


def test_the_experiment_and_its_run_are_listed(browser, mlflow_ui, pipeline_run):
    run = pipeline_run["run"]
    page_shows(browser, f"{mlflow_ui}/#/experiments", "face-mask")
    page_shows(
        browser,
        f"{mlflow_ui}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}",
        run.info.run_name,
        run.info.run_id,
        "test_f1",
        "train_loss",
        "train.epochs",
    )


def test_the_run_shows_its_plots(browser, mlflow_ui, pipeline_run):
    from selenium.webdriver.common.by import By

    run, plots = pipeline_run["run"], pipeline_run["plots"]
    page_shows(
        browser,
        f"{mlflow_ui}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}/artifacts",
        "plots",
        "tables",
        "validation",
    )
    browser.find_element(By.XPATH, "//*[normalize-space(text())='plots']").click()  # unfold the folder
    wait_until(browser, lambda body: all(name in body for name in plots))
    browser.find_element(By.XPATH, f"//*[normalize-space(text())='{plots[0]}']").click()
    # The preview is the PNG itself, fetched from the server and decoded by the browser.
    wait_until(
        browser,
        lambda body: (
            f"plots/{plots[0]}" in body
            and browser.execute_script(
                "return [...document.images].some(i => i.src.startsWith('blob:') && i.naturalWidth > 100)"
            )
        ),
    )


def test_the_registered_model_shows_its_version_aliases_and_tags(browser, mlflow_ui, pipeline_run):
    page_shows(
        browser,
        f"{mlflow_ui}/#/models/face-mask",
        "face-mask",
        f"Version {pipeline_run['version']}",
        "@ champion",
        "@ challenger",
        "primary_metric",
    )


def wait_until(driver, condition, timeout: float = 60) -> None:
    """Wait until ``condition(visible page text)`` holds."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.5).until(
        lambda d: condition(d.find_element(By.TAG_NAME, "body").text)
    )


def test_the_link_dlfolio_ui_prints_opens_the_registered_models(browser, mlflow_ui, pipeline_run):
    # MLflow's home opens in GenAI mode, which hides Models; the printed link is the model-training view's list.
    from flows.commands.ui import ui_url

    port = int(mlflow_ui.rsplit(":", 1)[1])
    page_shows(browser, ui_url(port), "face-mask", "Create Model")
