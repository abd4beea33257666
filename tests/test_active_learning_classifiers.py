"""Active learning for every classifier: each one's ``active_learning:`` section runs through the shared stage
(components/active/stage.py) on the project's own estimator, NumPy or torch, and a project that does not
classify refuses the section at its YAML path. Tiny settings: one round of a few labels on a small pool."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from components.active.stage import restrict_training, run_active_learning
from components.capabilities import Capability, ProbabilisticClassifier
from components.projects import PROJECTS, settings_schemas
from components.settings import SettingsError, load_project_settings
from tests.conftest import REPO

pytestmark = pytest.mark.contract

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
# A classifier is a project that serves conformal prediction sets: a fixed label set and predict_proba.
CLASSIFIERS = sorted(n for n, p in PROJECTS.items() if Capability.CONFORMAL_SETS in p.capabilities)
# The classifiers whose active learning came with the NumPy estimators and the token-id torch estimator.
NEW = {
    # project: (tiny section, the estimator's class name)
    "logistic-regression": ({"initial_size": 4, "query_size": 4, "rounds": 1, "epochs": 50}, "LogisticRegressionNet"),
    "autodiff-mlp": (
        {"initial_size": 10, "query_size": 5, "rounds": 1, "epochs": 2, "pool_size": 80},
        "AutodiffMLPClassifier",
    ),
    "numpy-cnn": (
        {"initial_size": 10, "query_size": 5, "rounds": 1, "epochs": 10, "pool_size": 60, "test_size": 60},
        "ConvClassifier",
    ),
    "emojify": (  # the averaged-embedding arch as the served one: the LSTM's fits cost seconds each on the CPU
        {"initial_size": 5, "query_size": 5, "rounds": 1, "epochs": 20, "pool_size": 60, "test_size": 60},
        "TorchTensorClassifier",
    ),
}
CHANGES = {"emojify": {"model": {"arch": "average", "hidden": 128, "layers": 2, "dropout": 0.5}}}


def write(tmp_path, name: str, body: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"defaults": PARAMS["defaults"], "projects": {name: body}}))
    return path


def with_section(name: str, al: dict, **changes) -> dict:
    return {**copy.deepcopy(PARAMS["projects"][name]), "active_learning": al, **changes}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_classifier_accepts_an_active_learning_section(name, tmp_path):
    settings = load_project_settings(
        write(tmp_path, name, with_section(name, {"strategies": ["margin"], "rounds": 2})), name, settings_schemas()
    )
    assert settings.active_learning.strategies == ("margin",) and settings.active_learning.rounds == 2
    assert Capability.ACTIVE_LEARNING in PROJECTS[name].capabilities


@pytest.mark.parametrize("name", ["linear-regression", "ner-resumes"])
def test_a_project_that_does_not_classify_refuses_the_section_at_its_yaml_path(name, tmp_path):
    path = write(tmp_path, name, with_section(name, {"strategies": ["margin"]}))
    with pytest.raises(SettingsError) as refused:
        load_project_settings(path, name, settings_schemas())
    assert str(refused.value).startswith(f"{path}: projects.{name}.active_learning: ")


@pytest.mark.parametrize("name", sorted(NEW))
def test_the_stage_runs_on_the_projects_own_estimator_and_returns_strategy_and_random_curves(
    name, sample_data, tmp_path
):
    tiny, estimator_class = NEW[name]
    body = with_section(
        name, {"strategies": ["margin"], **tiny}, data_dir=str(sample_data(name)), **CHANGES.get(name, {})
    )
    settings = load_project_settings(write(tmp_path, name, body), name, settings_schemas())
    project = PROJECTS[name]
    est = project.estimator(settings)
    assert type(est).__name__ == estimator_class and isinstance(est, ProbabilisticClassifier)
    data = project.prepare(settings)
    al = settings.active_learning
    result = run_active_learning(project, data, settings, al)

    curves = result.report.tables["active_learning_curves"]
    assert set(curves["strategy"]) == {"random", "margin"}
    final = al.initial_size + al.rounds * al.query_size
    for strategy, curve in curves.groupby("strategy"):
        assert curve["labels"].tolist() == [al.initial_size, final], strategy
        assert curve["accuracy"].between(0, 1).all()
        # what the strategy had labelled: distinct training-split items, as many as the last round's labels
        picked = result.labelled[strategy]
        assert len(np.unique(picked)) == final and picked.max() < len(data.y_train)
    metrics = result.report.metrics
    assert {"al_full_accuracy", "al_margin_final_accuracy", "al_random_final_accuracy"} <= set(metrics)
    # the all-labels reference beats chance: the rounds' recipe learns on this sample
    chance = np.bincount(np.asarray(data.y_test).astype(int)).max() / len(data.y_test)
    assert metrics["al_full_accuracy"] > chance + 0.1

    # train_on: selected trains on exactly those items, whatever fields the project keeps its splits in
    part = restrict_training(data, result.labelled["margin"])
    assert len(part.y_train) == final and np.array_equal(
        part.y_train, np.asarray(data.y_train)[result.labelled["margin"]]
    )
    assert len(part.y_test) == len(data.y_test)
