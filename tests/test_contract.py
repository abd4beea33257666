"""The contract every project in the catalog keeps, checked for each one without any service.

For each project: its params.yaml section validates (shrunk by the overrides below, applied the way a sweep
applies them), validate -> prepare -> train -> evaluate runs through the Project methods on a tiny sample for
one epoch, the primary metric is a finite number, and the predictor survives the trip the registry gives it
(joblib, as ``flows/pipeline.py`` writes ``predictor.joblib``): the unpickled one serves the columns of the
signature MLflow would infer, and scores what ``evaluate`` measured. No Prefect, no MLflow server: a project
that breaks its contract fails here in seconds, not in a pipeline run minutes later.

The numbers are not quality thresholds (one epoch on a tiny sample learns little); those live in each
project's e2e tests.
"""

from __future__ import annotations

import math
from importlib.metadata import version

import joblib
import numpy as np
import pandas as pd
import pytest

from components.capabilities import Capability, ConformalServing
from components.projects import PROJECTS, Project, settings_schemas
from components.serving.predictor import Predictor, distribution_name, requirements
from components.serving.signature import is_image_batch, served_signature
from components.settings import load_project_settings
from tests.conftest import REPO

pytestmark = pytest.mark.contract

# Shrink overrides per project (dotted path -> value, as `dlfolio sweep` passes them): one epoch, smaller nets
# and fewer generated examples, so that the whole table runs in well under a minute on one CPU core. Every
# project is listed, so a new project must say how it shrinks (test_every_project_says_how_it_shrinks).
SHRINK: dict[str, dict] = {
    # conformal.confidence_levels [0.8] where the tiny sample leaves under 21 calibration rows (95% needs more)
    "face-mask": {"train.epochs": 1, "conformal.confidence_levels": [0.8]},
    "linear-regression": {"train.epochs": 5},
    "logistic-regression": {"train.iterations": 5, "train.record_every": 1},
    "autodiff-mlp": {"train.epochs": 1},
    "numpy-dnn": {
        "train.epochs": 1,
        "data.val_size": 200,
        "data.min_per_class": 10,
        "model.hidden": [32],
        "comparisons.train_size": 100,
        "comparisons.val_size": 50,
        "comparisons.epochs": 1,
        "comparisons.hidden": [16],
        "comparisons.regularization_train_size": 50,
        "comparisons.regularization_epochs": 1,
        "gradcheck.samples": 2,
        "gradcheck.coordinates": 5,
    },
    "numpy-cnn": {
        "train.epochs": 1,
        "model.blocks": [{"filters": 4, "pool": "max"}, {"filters": 4, "pool": "avg"}],
        "model.hidden": [16],
    },
    "numpy-rnn": {"train.epochs": 1, "model.hidden_size": 16, "sampling.count": 20, "sampling.table_count": 2},
    "happy-house": {"train.epochs": 1},
    "mnist-dnn": {"train.epochs": 1, "data.train_limit": 600, "data.test_limit": 200, "data.min_per_class": 10},
    "mnist-mc-dropout": {
        "train.epochs": 1,
        "data.train_limit": 600,
        "data.test_limit": 200,
        "data.min_per_class": 10,
        "uncertainty.passes": 3,
        "uncertainty.max_inputs": 100,
    },
    "resnet50": {"train.epochs": 1, "data.min_per_class": 2, "conformal.confidence_levels": [0.8]},
    "mobilenetv2-transfer": {  # the tiny sample's 40 a class at the own-data split: 24 validation rows calibrate
        "train.epochs": 1,
        "finetune.epochs": 1,
        "data.image_size": 48,
        "split.val": 0.15,
        "split.test": 0.2,
    },
    "vgg16-transfer": {
        "train.epochs": 1,
        "finetune.epochs": 1,
        "data.min_per_class": 3,
        "conformal.confidence_levels": [0.8],
    },
    "face-mask-transfer": {
        "train.epochs": 1,
        "finetune.epochs": 1,
        "data.image_size": 32,
        "conformal.confidence_levels": [0.8],
        "compare.arms": [
            {"name": "efficientnet_lite0-scratch", "backbone": "efficientnet_lite0", "weights": None, "epochs": 1}
        ],
    },
    "word-debias": {},
    "emojify": {"train.epochs": 1, "model.hidden": 16, "arms.average.epochs": 1},
    "nmt-dates": {"train.epochs": 1},
    "unet-segmentation": {"train.epochs": 1, "model.widths": [4, 8, 16], "examples": 2},
    "transformer": {
        "train.epochs": 1,
        "model.d_model": 16,
        "model.d_ff": 32,
        "model.encoder_layers": 1,
        "model.decoder_layers": 1,
    },
    "style-transfer": {"data.image_size": 32, "optimise.steps": 2, "optimise.log_every": 1, "serve.steps": 1},
    "jazz-lstm": {
        "train.epochs": 1,
        "model.embed_dim": 8,
        "model.hidden_size": 16,
        "generation.count": 2,
        "generation.length": 8,
    },
    "yolo-cars": {"train.epochs": 1, "data.image_size": 64, "model.widths": [4, 8, 16, 32], "examples": 2},
    "qa-babi": {"train.epochs": 1},
    "trigger-word": {
        "train.epochs": 1,
        "clips.train": 32,
        "clips.val": 8,
        "clips.test": 8,
        "model.channels": 16,
        "model.hidden": 8,
    },
    "facial-keypoints": {"train.epochs": 1, "examples": 2, "data.min_complete_rows": 20},
    "dinosaur-names": {"train.epochs": 2, "model.hidden_size": 16, "sampling.count": 20, "sampling.table_count": 2},
    # their pretrained comparison arms cost seconds (loading spaCy; dlib on the photos): their own tests run them
    "ner-resumes": {
        "train.epochs": 1,
        "model.d_model": 16,
        "model.d_ff": 32,
        "model.layers": 1,
        "compare_spacy.enabled": False,
    },
    "facenet-verification": {"train.epochs": 1, "examples": 2, "compare_dlib.real_photos": None},
}
# Projects whose full sample takes seconds to write or to train on: make_sample(out_dir, tiny=True) writes a few
# dozen examples in the same format instead.
TINY_SAMPLE = {
    "face-mask",
    "face-mask-transfer",
    "numpy-dnn",
    "resnet50",
    "vgg16-transfer",
    "mobilenetv2-transfer",
    "nmt-dates",
    "unet-segmentation",
    "jazz-lstm",
    "yolo-cars",
    "facial-keypoints",
    "ner-resumes",
    "facenet-verification",
}


# The served model of these projects is not the evaluated one, so its score differs by design (absolute margin):
# mnist-mc-dropout serves the mean of T stochastic dropout passes, while `evaluate`'s accuracy is the net with
# dropout off (its MC accuracy is `mc_accuracy`, on its own draw of passes).
SCORE_MARGIN = {"mnist-mc-dropout": 0.05}


def supports_scoring(project: Project) -> bool:
    # Project.score raises NotImplementedError unless a project overrides it (the promotion gate needs it).
    return type(project).score is not Project.score


class ServedModel:
    """What MLflow serves from ``components/serving/pyfunc_model.py``: ``predict(inputs) -> DataFrame``,
    by way of the predictor's ``predict_frame``. ``Project.score`` takes anything with this method."""

    def __init__(self, predictor):
        self.predictor = predictor

    def predict(self, inputs) -> pd.DataFrame:
        return self.predictor.predict_frame(inputs)


def assert_settings_ask_only_for_what_the_project_can_do(project: Project, settings, data, predictor) -> None:
    """Declared capabilities match the settings and the code: what a section turns on is declared by the project
    (the loader refuses it otherwise), and what is declared is really there: a predictor that serves the
    calibrated sets/intervals, an estimator and arrays for the active-learning rounds, a score() of its own."""
    declared = project.capabilities
    conformal = getattr(settings, "conformal", None)
    if conformal is not None:
        assert declared & {Capability.CONFORMAL_SETS, Capability.CONFORMAL_INTERVALS}, project.name
        assert isinstance(predictor, ConformalServing), f"{project.name}: conformal: its predictor cannot serve it"
    if Capability.CONFORMAL_SETS in declared or Capability.CONFORMAL_INTERVALS in declared:
        assert isinstance(predictor, ConformalServing), f"{project.name}: declares conformal serving it lacks"
    if getattr(settings, "active_learning", None) is not None:
        assert Capability.ACTIVE_LEARNING in declared, project.name
    if Capability.ACTIVE_LEARNING in declared:
        # the active-learning stage refits project.estimator(settings) on the growing labelled pool
        assert callable(getattr(project, "estimator", None)), f"{project.name}: active_learning: no estimator"
        assert all(hasattr(data, name) for name in ("X_train", "y_train", "X_test", "y_test")), project.name
    if settings.schedule is not None:
        assert Capability.PROMOTION_SCORING in declared, project.name
    if Capability.PROMOTION_SCORING in declared:
        assert type(project).score is not Project.score, f"{project.name}: declares scoring without a score()"


CONFORMAL = {Capability.CONFORMAL_SETS, Capability.CONFORMAL_INTERVALS}


def assert_the_registered_model_serves_calibrated_sets_or_intervals(project, trained, data, settings, example, path):
    """What flows/pipeline.py registers for a conformal project: the conformal stage on the calibration split, its
    calibrator attached to the predictor, pickled; the unpickled model serves a set (classifiers) or an interval
    (regressors) per row, and the batch's drift warning."""
    from components.conformal.stage import run_conformal

    assert settings.conformal is not None, f"{project.name}: conformal is on by default (params.yaml)"
    calibration = run_conformal(project.conformal_model(trained), data, settings.conformal, seed=settings.seed)
    assert 0 <= calibration.report.metrics["conformal_drift_pvalue"] <= 1
    predictor, _ = project.predictor(trained, data, settings)
    joblib.dump(predictor.with_conformal(calibration.served, calibration.served_confidence), path)
    frame = joblib.load(path).predict_frame(example)
    assert len(frame) == len(example) and {"drift_pvalue", "drift_warning"} <= set(frame.columns)
    if Capability.CONFORMAL_SETS in project.capabilities:
        assert (frame["set_size"] == frame["prediction_set"].map(len)).all()
        names = {c.removeprefix("p_") for c in frame.columns if c.startswith("p_")}
        assert all(set(map(str, s)) <= names for s in frame["prediction_set"]), project.name
    else:
        lower = [c for c in frame.columns if c.endswith("lower")]
        assert lower and all((frame[c] <= frame[c.replace("lower", "upper")]).all() for c in lower)


def test_every_project_says_how_it_shrinks():
    assert sorted(SHRINK) == sorted(PROJECTS)
    assert TINY_SAMPLE <= set(PROJECTS) and SCORE_MARGIN.keys() <= set(PROJECTS)


@pytest.mark.parametrize("name", list(PROJECTS))
def test_project_keeps_its_contract(name, tmp_path):
    project = PROJECTS[name]
    data_dir = tmp_path / "data"
    project.make_sample(data_dir, tiny=True) if name in TINY_SAMPLE else project.make_sample(data_dir)
    overrides = {"data_dir": str(data_dir), "device": "cpu", **SHRINK[name]}
    settings = load_project_settings(REPO / "params.yaml", name, {name: settings_schemas()[name]}, overrides=overrides)
    assert isinstance(settings, project.Settings)

    project.validate(settings)
    data = project.prepare(settings)
    epochs: list[dict] = []
    checkpoint_dir = tmp_path / "model"
    checkpoint_dir.mkdir()  # the flow hands train an existing directory (the staged outputs' model/)
    trained = project.train(data, settings, on_epoch=epochs.append, checkpoint_dir=checkpoint_dir)
    evaluation = project.evaluate(trained, data, settings)
    metric = evaluation.metrics[project.primary_metric]
    assert math.isfinite(metric), evaluation.metrics

    predictor, example = project.predictor(trained, data, settings)
    path = tmp_path / "predictor.joblib"
    joblib.dump(predictor, path)
    served = joblib.load(path)
    signature = served_signature(example, predictor.predict_frame(example))
    frame = served.predict_frame(example)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == signature.outputs.input_names()
    if is_image_batch(example):  # the signature takes any height and width: the predictor must resize them
        larger = np.pad(example, [(0, 0), (5, 11), (9, 3)] + [(0, 0)] * (example.ndim - 3), mode="edge")
        other = served.predict_frame(larger)
        assert list(other.columns) == list(frame.columns) and len(other) == len(frame), name

    assert_settings_ask_only_for_what_the_project_can_do(project, settings, data, predictor)
    # A Predictor, whose requirements (declared and found in its pickle) are all installed distributions: what
    # the registered model lists for `mlflow models serve`, pinned to these versions.
    assert isinstance(predictor, Predictor), f"{name}: its predictor is not a components.serving.predictor.Predictor"
    for requirement in requirements(predictor):
        assert version(distribution_name(requirement)), requirement
    if project.capabilities & CONFORMAL:
        assert_the_registered_model_serves_calibrated_sets_or_intervals(project, trained, data, settings, example, path)

    if supports_scoring(project):
        # The promotion gate's number for this model must be the one the pipeline recorded for it. abs=1e-4 is
        # far below one test item's share of any of these splits, yet above what a 1-epoch detector's mAP of ~0
        # moves when its boxes go through the served frame (3e-6 seen for yolo-cars).
        scored = project.score(ServedModel(served), data, settings)
        assert scored[project.primary_metric] == pytest.approx(metric, rel=1e-6, abs=SCORE_MARGIN.get(name, 1e-4))
