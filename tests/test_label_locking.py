"""Two `dlfolio label import`s at once keep every label: state.json is locked from read to write.

On main d432da5 both imports read the same state.json, both reported success, and the second one's write
dropped the first one's batch (45 of 50 labels survived).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO
from tests.test_active_learning import SMALL_AL, fill_in

IMPORT_ON_GO = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from components.active.labels import LabelSession
    from components.projects import get_project, settings_schemas
    from components.settings import load_project_settings

    root, file, go = map(Path, sys.argv[1:4])
    settings = load_project_settings(root / "params.yaml", "face-mask", settings_schemas())
    session = LabelSession(get_project("face-mask"), settings, root)  # loads the data: the slow part
    print("ready", flush=True)
    while not go.exists():  # both processes import at the same moment
        time.sleep(0.005)
    score, _, _ = session.import_labels(file)
    print(score["labels"], flush=True)
    """
)


@pytest.mark.integration  # two processes that each load the project: 20 s, too slow for the fast tier
def test_two_imports_at_once_keep_both_batches(project_root, run_cli, tmp_path):
    root = project_root("face-mask", {"active_learning": SMALL_AL})
    assert run_cli("label", "export", "face-mask", "--root", str(root))[0] == 0
    answers = fill_in(root / "labels" / "face-mask" / "queries.csv")
    files = [tmp_path / "alice.csv", tmp_path / "bob.csv"]
    answers.iloc[:2].to_csv(files[0], index=False)  # two people, each with part of the batch
    answers.iloc[2:].to_csv(files[1], index=False)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", IMPORT_ON_GO, str(root), str(f), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for f in files
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    # One after the other, not side by side: whoever goes first has its own batch (2 or 3 labels), the second all.
    first, second = sorted(int(out.split()[-1]) for out, _ in results)
    assert first in (12, 13) and second == 15
    assert any("waiting up to" in err for _, err in results)  # the second one said it waited
    state = json.loads((root / "labels" / "face-mask" / "state.json").read_text())
    assert len(state["labelled"]) == 15
    assert all(state["labelled"][item] == label for item, label in zip(answers["item"], answers["label"]))
    assert [h["labels"] for h in state["history"]] == [10, first, 15]


@pytest.mark.unit
def test_a_partial_import_keeps_the_unanswered_items_pending(project_root, run_cli, tmp_path):
    root = project_root("face-mask", {"active_learning": SMALL_AL})
    assert run_cli("label", "export", "face-mask", "--root", str(root))[0] == 0
    answers = fill_in(root / "labels" / "face-mask" / "queries.csv")
    answers.iloc[:2].to_csv(tmp_path / "part.csv", index=False)
    code, out, err = run_cli("label", "import", "face-mask", str(tmp_path / "part.csv"), "--root", str(root))
    assert code == 0, err
    state = json.loads((root / "labels" / "face-mask" / "state.json").read_text())
    assert len(state["pending"]) == 5 and set(answers["item"][2:]) <= set(state["pending"])
    assert not set(state["pending"]) & set(state["labelled"])


@pytest.mark.unit
def test_an_import_that_cannot_get_the_lock_says_who_holds_it(project_root, run_cli, tmp_path, monkeypatch):
    from components.active import labels

    root = project_root("face-mask", {"active_learning": SMALL_AL})
    assert run_cli("label", "export", "face-mask", "--root", str(root))[0] == 0
    answers = fill_in(root / "labels" / "face-mask" / "queries.csv")
    answers.to_csv(tmp_path / "answers.csv", index=False)
    monkeypatch.setattr(labels, "LOCK_WAIT", 0.3)
    lock = labels.FileLock(root / "labels" / "face-mask" / "state.json.lock", busy=str).acquire()
    try:
        code, _, err = run_cli("label", "import", "face-mask", str(tmp_path / "answers.csv"), "--root", str(root))
    finally:
        lock.release()
    assert code == 2
    assert f"still locked by another `dlfolio label` (pid {os.getpid()}, since 20" in err
    assert len(err.strip().splitlines()) == 2  # "waiting up to 0s", then the error: no traceback
