"""Capabilities: what a section asks of its project is refused when params.yaml loads, naming the key, and every
catalog project's declared capabilities are what its code really does. No services: settings, samples, NumPy."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from sklearn.base import clone

from components.active.settings import ActiveLearningSettings
from components.active.stage import round_estimator
from components.capabilities import (
    Capability,
    ConformalServing,
    MCDropoutClassifier,
    ProbabilisticClassifier,
)
from components.conformal.calibration import row_hashes
from components.projects import CATALOG, PROJECTS, get_project, settings_schemas
from components.projects.base import Project
from components.settings import (
    ProjectSchema,
    SettingsError,
    load_all_settings,
    load_project_settings,
)
from tests.conftest import REPO

pytestmark = pytest.mark.unit

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
CONFORMAL = {Capability.CONFORMAL_SETS, Capability.CONFORMAL_INTERVALS}


def write(tmp_path, project: str, section: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"defaults": PARAMS["defaults"], "projects": {project: section}}))
    return path


def section(project: str, **changes) -> dict:
    return {**copy.deepcopy(PARAMS["projects"][project]), **changes}


# --- refusals, each naming its YAML path -------------------------------------------------------------------------


def test_a_bayesian_strategy_on_a_project_without_mc_dropout_is_refused_naming_the_strategy(tmp_path):
    al = {**PARAMS["projects"]["numpy-dnn"]["active_learning"], "strategies": ["margin", "bald"]}
    with pytest.raises(SettingsError) as refused:
        load_project_settings(
            write(tmp_path, "numpy-dnn", section("numpy-dnn", active_learning=al)), "numpy-dnn", settings_schemas()
        )
    message = str(refused.value)
    assert "projects.numpy-dnn.active_learning: project numpy-dnn cannot sample its predictive distribution" in message
    assert "bald score MC-dropout passes" in message
    # margin alone needs only predict_proba: the same section loads
    al["strategies"] = ["margin"]
    load_project_settings(
        write(tmp_path, "numpy-dnn", section("numpy-dnn", active_learning=al)), "numpy-dnn", settings_schemas()
    )


def test_conformal_sets_on_a_regressor_project_are_refused_at_the_conformal_key(tmp_path):
    bad = section("linear-regression", conformal={"methods": ["lac"], "calibration": 0.2})
    with pytest.raises(SettingsError) as err:
        load_project_settings(write(tmp_path, "linear-regression", bad), "linear-regression", settings_schemas())
    assert str(err.value) == (
        f"{tmp_path / 'params.yaml'}: projects.linear-regression.conformal: project linear-regression cannot serve "
        "conformal sets (methods ['lac'] calibrate a classifier's prediction sets; its capabilities: conformal "
        "intervals, promotion scoring)"
    )


def test_conformal_intervals_on_a_classifier_project_are_refused(tmp_path):
    bad = section("face-mask", conformal={"methods": ["absolute"]})
    with pytest.raises(
        SettingsError,
        match=r"projects\.face-mask\.conformal: project face-mask cannot serve "
        r"conformal intervals \(methods \['absolute'\]",
    ):
        load_project_settings(write(tmp_path, "face-mask", bad), "face-mask", settings_schemas())


def face_mask_without(*missing: Capability) -> dict[str, ProjectSchema]:
    """face-mask's real settings class, declared without some capabilities: a project whose settings accept
    a section its code cannot run (the catalog itself has none, as the tests below hold it to)."""
    spec = get_project("face-mask")
    return {"face-mask": ProjectSchema("face-mask", spec.Settings, spec.capabilities - set(missing))}


def test_active_learning_on_a_project_that_cannot_run_it_is_refused(tmp_path):
    path = write(tmp_path, "face-mask", section("face-mask"))
    with pytest.raises(
        SettingsError,
        match=r"projects\.face-mask\.active_learning: project face-mask cannot run "
        r"active learning \(the stage simulates",
    ):
        load_project_settings(path, "face-mask", face_mask_without(Capability.ACTIVE_LEARNING))


def test_train_gpus_on_a_project_that_cannot_train_under_torchrun_is_refused(tmp_path):
    body = section("face-mask", train={**PARAMS["projects"]["face-mask"].get("train", {}), "gpus": 2})
    path = write(tmp_path, "face-mask", body)
    with pytest.raises(
        SettingsError,
        match=r"projects\.face-mask\.train: project face-mask cannot train under torchrun \(train\.gpus 2",
    ):
        load_project_settings(path, "face-mask", face_mask_without(Capability.DISTRIBUTED_TRAINING))
    one = section("face-mask", train={**PARAMS["projects"]["face-mask"].get("train", {}), "gpus": 1})
    assert (
        load_project_settings(
            write(tmp_path, "face-mask", one), "face-mask", face_mask_without(Capability.DISTRIBUTED_TRAINING)
        ).train.gpus
        == 1
    )  # in-process training asks nothing


def test_a_schedule_needs_promotion_scoring_and_one_in_defaults_is_reported_there(tmp_path):
    path = write(tmp_path, "face-mask", section("face-mask"))
    with pytest.raises(
        SettingsError,
        match=r"projects\.face-mask\.schedule: project face-mask cannot score a "
        r"served model for promotion",
    ):
        load_project_settings(path, "face-mask", face_mask_without(Capability.PROMOTION_SCORING))
    shared = section("face-mask")
    shared.pop("schedule")
    path.write_text(
        yaml.safe_dump({"defaults": {**PARAMS["defaults"], "schedule": "0 3 * * 1"}, "projects": {"face-mask": shared}})
    )
    with pytest.raises(SettingsError, match=r"params\.yaml: defaults\.schedule: project face-mask cannot score"):
        load_project_settings(path, "face-mask", face_mask_without(Capability.PROMOTION_SCORING))


def test_every_refusal_of_a_section_is_reported_at_once(tmp_path):
    path = write(tmp_path, "face-mask", section("face-mask"))
    with pytest.raises(SettingsError) as err:
        load_project_settings(path, "face-mask", face_mask_without(*Capability))
    lines = str(err.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "projects.face-mask.schedule",
        "projects.face-mask.conformal",
        "projects.face-mask.active_learning",
    ]


def test_a_comparison_arm_below_its_backbones_minimum_input_size_is_refused_before_anything_trains(tmp_path):
    arms = [{"name": "inception-scratch", "backbone": "inception_v3", "weights": None, "epochs": 1}]
    bad = section("face-mask-transfer")
    bad["compare"] = {**bad["compare"], "arms": [*bad["compare"]["arms"], *arms]}
    last = len(bad["compare"]["arms"]) - 1
    with pytest.raises(
        SettingsError,
        match=rf"projects\.face-mask-transfer\.compare\.arms\.{last}\.backbone: images of "
        r"64 px \(data\.image_size\) are too small for inception_v3: it needs "
        r"at least 75 px",
    ):
        load_project_settings(write(tmp_path, "face-mask-transfer", bad), "face-mask-transfer", settings_schemas())
    bad["compare"]["arms"][last] = {**arms[0], "image_size": 75}  # at its minimum the same arm is fine
    settings = load_project_settings(
        write(tmp_path, "face-mask-transfer", bad), "face-mask-transfer", settings_schemas()
    )
    assert settings.compare.arms[last].backbone == "inception_v3"


def test_dlfolio_check_fails_within_seconds_naming_the_key(tmp_path, run_cli):
    params = copy.deepcopy(PARAMS)
    params["projects"]["linear-regression"]["conformal"]["methods"] = ["aps"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run_cli("check", "--params", str(REPO / "params.yaml"))  # imports warm: time the check, not the imports
    started = time.perf_counter()
    code, out, err = run_cli("check", "--params", str(tmp_path / "params.yaml"))
    assert time.perf_counter() - started < 10
    assert code == 2 and not out
    assert (
        "params.yaml: projects.linear-regression.conformal: project linear-regression cannot serve conformal sets"
        in err
    )


def test_the_repository_params_file_asks_only_for_what_its_projects_declare():
    settings = load_all_settings(REPO / "params.yaml", settings_schemas())
    for name, s in settings.items():
        assert {need for _, need, _ in s.requirements()} <= get_project(name).capabilities, name


# --- every catalog project's declaration matches its code --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_declared_promotion_scoring_is_an_overridden_score(name):
    project = PROJECTS[name]
    overrides = type(project).score is not Project.score
    assert (Capability.PROMOTION_SCORING in project.capabilities) == overrides


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_a_stage_section_is_in_the_settings_exactly_when_the_project_declares_the_stage(name):
    project = PROJECTS[name]
    fields = project.Settings.model_fields
    assert ("conformal" in fields) == bool(project.capabilities & CONFORMAL), name
    assert ("active_learning" in fields) == (Capability.ACTIVE_LEARNING in project.capabilities), name
    assert not {Capability.CONFORMAL_SETS, Capability.CONFORMAL_INTERVALS} <= project.capabilities  # one kind


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_a_project_declares_distributed_training_exactly_when_it_trains_with_the_shared_trainer(name):
    """torchrun runs the project's train(), whose DDP is the shared trainer's (training.loop.fit): the projects
    whose ``train`` section is the trainer's settings."""
    from components.settings import TrainSettings

    project = PROJECTS[name]
    field = project.Settings.model_fields.get("train")
    shared = field is not None and isinstance(field.annotation, type) and issubclass(field.annotation, TrainSettings)
    assert (Capability.DISTRIBUTED_TRAINING in project.capabilities) == shared, name


def settings_with(name: str, sample_data, tmp_path, **changes):
    body = section(name, data_dir=str(sample_data(name)), **changes)
    return load_project_settings(write(tmp_path, name, body), name, settings_schemas())


CONFORMAL_SETS = sorted(n for n, p in PROJECTS.items() if Capability.CONFORMAL_SETS in p.capabilities)
ACTIVE = sorted(n for n, p in PROJECTS.items() if Capability.ACTIVE_LEARNING in p.capabilities)


@pytest.mark.parametrize("name", CONFORMAL_SETS)
def test_a_project_declaring_conformal_sets_holds_out_a_calibration_split(name, sample_data, tmp_path):
    """The split comes from prepare (Project.with_calibration unless the project carves it itself); that the
    trained model's predictor serves the sets is checked per project in tests/test_contract.py."""
    project = PROJECTS[name]
    settings = settings_with(name, sample_data, tmp_path, conformal={"methods": ["lac"], "calibration": 0.15})
    data = project.prepare(settings)
    assert len(data.y_cal) > 0 and data.X_cal.shape[1:] == data.X_test.shape[1:]
    assert not set(row_hashes(data.X_cal)) & set(row_hashes(data.X_train)) or hasattr(data, "ids_cal")
    if hasattr(data, "X_val"):  # calibrate_on: validation reuses the split that only picked an epoch
        settings = settings_with(name, sample_data, tmp_path, conformal={"calibrate_on": "validation"})
        again = project.prepare(settings)
        assert np.array_equal(again.X_cal, again.X_val) and len(again.X_train) > len(data.X_train)


def test_calibrating_on_a_validation_split_a_project_lacks_is_refused_with_its_yaml_path(sample_data, tmp_path):
    for name, method in (("logistic-regression", "lac"), ("linear-regression", "absolute")):
        conformal = {"methods": [method], "calibrate_on": "validation"}
        settings = settings_with(name, sample_data, tmp_path, conformal=conformal)
        with pytest.raises(SettingsError, match=rf"projects\.{name}\.conformal\.calibrate_on: "):
            PROJECTS[name].prepare(settings)


def test_every_project_that_can_serve_conformal_sets_or_intervals_has_them_on_in_params_yaml():
    settings = load_all_settings(REPO / "params.yaml", settings_schemas())
    for name, project in PROJECTS.items():
        if project.capabilities & CONFORMAL:
            assert settings[name].conformal is not None, f"{name}: no conformal section in params.yaml"


def test_the_project_declaring_conformal_intervals_calibrates_and_serves_them(sample_data, tmp_path):
    from components.conformal.stage import run_conformal

    # linear-regression trains in a second; facial-keypoints' intervals are checked in tests/test_contract.py
    assert {"linear-regression", "facial-keypoints"} == {
        n for n, p in PROJECTS.items() if Capability.CONFORMAL_INTERVALS in p.capabilities
    }
    name = "linear-regression"
    project = PROJECTS[name]
    settings = settings_with(name, sample_data, tmp_path)
    data = project.prepare(settings)
    trained = project.train(data, settings, on_epoch=lambda stats: None, checkpoint_dir=tmp_path / "model")
    calibration = run_conformal(trained.model, data, settings.conformal, seed=settings.seed)
    predictor, example = project.predictor(trained, data, settings)
    assert isinstance(predictor, ConformalServing)
    served = predictor.with_conformal(calibration.served, calibration.served_confidence).predict_frame(example)
    assert (served["lower"] <= served["upper"]).all() and len(served) == len(example)


@pytest.mark.parametrize("name", ACTIVE)
def test_a_project_declaring_active_learning_has_an_estimator_the_rounds_can_clone_and_sample(
    name, sample_data, tmp_path
):
    project = PROJECTS[name]
    settings = settings_with(name, sample_data, tmp_path)
    al = ActiveLearningSettings(epochs=2, strategies=("margin",))
    est = round_estimator(project, settings, al)
    # BALD and variation ratios sample its predictive distribution: declared exactly when the estimator can
    assert isinstance(est, MCDropoutClassifier) == (Capability.MC_SAMPLING in project.capabilities), name
    assert isinstance(est, ProbabilisticClassifier)
    params = est.get_params()  # batch gradient descent (logistic-regression's) counts passes as iterations
    epochs = est.train.epochs if "train" in params else params.get("epochs", params.get("iterations"))
    assert epochs == 2  # the round's own budget
    if "train" in est.get_params():  # a torch estimator: no validation slice of a round's few labels, no bar
        assert est.val_fraction == 0.0 and not est.progress
    again = clone(est)
    assert again.get_params() == est.get_params()  # modAL's and MAPIE's clone


def test_the_pipeline_has_no_capability_lookups_left():
    """The optional stages go by ``project.capabilities``; finding a capability by probing is what this replaced."""
    source = (REPO / "flows" / "pipeline.py").read_text()
    for probe in (
        'hasattr(predictor, "with_conformal")',
        'getattr(settings, "conformal"',
        'getattr(settings, "active_learning"',
        'getattr(getattr(settings, "train"',
    ):
        assert probe not in source


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_the_catalog_entry_is_what_the_project_class_reads(name):
    """The catalog (torch-free: what `dlfolio check` validates with) and the project's class agree."""
    project, entry = get_project(name), CATALOG[name]
    assert f"{type(project).__module__}:{type(project).__name__}" == entry.code
    assert project.Settings is entry.settings and project.capabilities == entry.capabilities


def test_getting_one_project_imports_only_its_own_module():
    probe = (
        "import sys; from components.projects import get_project; get_project('linear-regression'); "
        "print(sorted(m for m in sys.modules if m.startswith('components.projects.') and '.settings' not in m))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert done.stdout.split() == ["['components.projects.base',", "'components.projects.linear_regression']"]
