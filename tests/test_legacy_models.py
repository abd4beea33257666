"""Registered model versions made before the layout move (main d432da5) still load and predict.

The d432da5 fixtures are the ``predictor.joblib`` artifacts of versions registered by `dlfolio run` at d432da5:
linear-regression (trained 500 epochs: w 1.795, b 31.94) and face-mask (2 epochs, conformal LAC sets).
face-mask-1dc69b2.joblib was pickled by main 1dc69b2 (before the settings classes left the project modules) with
the project's own methods on its tiny sample, one epoch.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from components.serving.legacy import MOVED, load_predictor, old_module_names

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"


def test_every_old_module_path_points_at_a_module_that_exists():
    for old, new in MOVED.items():
        assert importlib.import_module(new).__name__ == new, old


def test_old_names_are_gone_again_after_loading():
    before = dict(sys.modules)
    with old_module_names():
        assert sys.modules["components.estimators"].__name__ == "components.training.estimators"
    assert "components.estimators" not in sys.modules
    assert sys.modules.get("components.conformal") is before.get("components.conformal")


def test_a_linear_regression_version_from_before_the_move_predicts_fahrenheit_with_intervals():
    predictor = load_predictor(str(FIXTURES / "linear-regression-d432da5.joblib"))
    frame = predictor.predict_frame(np.array([[0.0], [100.0]]))
    assert frame["fahrenheit"].tolist() == pytest.approx([32.0, 212.0], abs=1.0)  # F = 1.8 C + 32
    assert (frame["lower"] < frame["fahrenheit"]).all() and (frame["fahrenheit"] < frame["upper"]).all()


def test_a_face_mask_version_from_before_the_move_gives_probabilities_and_sets(sample_data):
    from components.data.formats.images import load_images, scan_image_folder

    predictor = load_predictor(str(FIXTURES / "face-mask-d432da5.joblib"))
    root = sample_data("face-mask")
    images = load_images(root, scan_image_folder(root).head(4), 64)
    frame = predictor.predict_frame(images)
    assert len(frame) == 4
    assert (frame["p_with_mask"] + frame["p_without_mask"]).to_numpy() == pytest.approx(1.0)
    assert all(label in pset for label, pset in zip(frame["label"], frame["prediction_set"]) if len(pset))


def test_a_face_mask_version_from_before_the_settings_move_still_loads_and_predicts(sample_data):
    """Pickled at main 1dc69b2 (face-mask, tiny sample, 1 epoch), when ModelSettings still lived in
    components.projects.image_classification; it now lives in components.projects.settings.image_classification."""
    from components.data.formats.images import load_images, scan_image_folder
    from components.projects.settings.image_classification import ModelSettings

    predictor = load_predictor(str(FIXTURES / "face-mask-1dc69b2.joblib"))
    assert isinstance(predictor.estimator.model, ModelSettings)
    root = sample_data("face-mask")
    frame = predictor.predict_frame(load_images(root, scan_image_folder(root).head(4), 64))
    assert len(frame) == 4
    assert (frame["p_with_mask"] + frame["p_without_mask"]).to_numpy() == pytest.approx(1.0)


def test_settings_names_lent_to_the_old_modules_are_gone_again():
    module = importlib.import_module("components.projects.image_classification")
    with old_module_names():
        assert module.ModelSettings.__module__ == "components.projects.settings.image_classification"
    assert not hasattr(module, "ModelSettings")
