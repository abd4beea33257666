"""`dvc plots show` draws offline: DVC's own page loads Vega from a CDN, so offline each of its Vega plots
stayed blank; the repository's template (.dvc/config -> .vega/template.html, written by `make setup`) has the
scripts inline. Rendered by headless Chromium in a network namespace with only a loopback device."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration
TEMPLATE = REPO / ".vega" / "template.html"


def dvc_repo_with_plots(root: Path, config: str) -> None:
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text(config)
    (root / "plots").mkdir()
    (root / "plots" / "history.csv").write_text("epoch,loss\n1,0.9\n2,0.5\n3,0.3\n")
    (root / "plots" / "roc.csv").write_text("fpr,tpr\n0,0\n0.1,0.8\n1,1\n")
    (root / "dvc.yaml").write_text(
        "plots:\n- plots/history.csv:\n    x: epoch\n    y: loss\n- plots/roc.csv:\n    x: fpr\n    y: tpr\n"
    )


def drawn(page: Path) -> int:
    """How many Vega views headless Chromium drew on the page, with no network but loopback."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    dom = subprocess.run(
        ["unshare", "--map-root-user", "--net", chromium, "--headless", "--no-sandbox", "--disable-gpu"]
        + ["--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return len(re.findall(r'<canvas[^>]*class="marks"', dom))


def show(root: Path) -> Path:
    dvc = str(Path(sys.executable).with_name("dvc"))
    subprocess.run([dvc, "plots", "show", "-o", "dvc_plots"], cwd=root, check=True, capture_output=True, timeout=120)
    return root / "dvc_plots" / "index.html"


def test_the_repositorys_template_draws_every_plot_offline(tmp_path):
    assert TEMPLATE.is_file(), "make setup writes .vega/template.html"
    config = (REPO / ".dvc" / "config").read_text().replace("../.vega/template.html", str(TEMPLATE))
    dvc_repo_with_plots(tmp_path, config)
    page = show(tmp_path)
    assert not re.search(r'<script[^>]+src="https?://', page.read_text())
    assert drawn(page) == 2


def test_dvcs_own_page_draws_nothing_offline(tmp_path):
    # The failure the template fixes, so the check above is known to be able to fail.
    dvc_repo_with_plots(tmp_path, "[core]\n    analytics = false\n")
    assert drawn(show(tmp_path)) == 0
