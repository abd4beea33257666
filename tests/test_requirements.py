"""A registered model lists every distribution it needs to load, pinned to the version it was trained with:
what the predictor declares, and what its pickle refers to (face-mask-transfer's model needed
efficientnet-lite-pytorch, which nothing listed)."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from components.serving.predictor import Predictor, distribution_name, pickled_requirements, requirements
from components.tracking.runs import pinned

pytestmark = pytest.mark.unit


class Served(Predictor):
    pip_requirements = ("music21",)  # imported only when it predicts: declared

    def __init__(self, estimator, helper):
        self.estimator, self.helper = estimator, helper

    def predict_frame(self, inputs):
        return self.estimator.predict(inputs)


def test_the_pickle_names_the_distributions_of_the_classes_it_holds():
    estimator = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    from pathlib import Path  # a standard-library class inside: never a requirement

    found = pickled_requirements(Served(estimator, Path("x")))
    assert "scikit-learn" in found and "numpy" in found
    assert not [r for r in found if distribution_name(r) in {"pathlib", "components", "dlfolio"}]


def test_declared_and_found_requirements_come_once_each_declared_first():
    estimator = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    predictor = Served(estimator, None)
    predictor.pip_requirements = ("Scikit_Learn==1.0", "music21")
    listed = requirements(predictor)
    assert listed[:2] == ["Scikit_Learn==1.0", "music21"]
    assert [distribution_name(r) for r in listed].count("scikit-learn") == 1


def test_pinned_uses_the_installed_version_without_its_local_label_and_keeps_what_is_pinned():
    listed = pinned(["torch", "numpy", "efficientnet-lite-pytorch==0.1.0", "no-such-distribution-xyz", "NumPy"])
    assert listed[0] == f"torch=={version('torch').split('+')[0]}" and "+" not in listed[0]
    assert listed[1] == f"numpy=={version('numpy')}"
    assert listed[2:] == ["efficientnet-lite-pytorch==0.1.0", "no-such-distribution-xyz"]  # NumPy: once


def test_a_predictor_must_say_how_it_serves():
    class Incomplete(Predictor):
        pass

    with pytest.raises(TypeError, match="predict_frame"):
        Incomplete()
