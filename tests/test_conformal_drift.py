"""The served drift warning (components/conformal/drift.py): a batch whose label-free conformity scores do not
look exchangeable with the calibration scores is flagged, at a stated false-alarm rate.

Both ways, on real data (scikit-learn's 1797 handwritten 8x8 digits) and real libraries (scikit-learn, MAPIE,
SciPy): calibrated on upright digits, a batch of the same digits turned 90 degrees (another, clearly shifted
data set, on which LAC's 90% sets no longer cover 90%) raises the warning in every draw; batches of held-out
upright digits raise it in about alpha of the draws. How near: with m independent draws at level alpha the
number of false alarms is Binomial(m, alpha); 300 draws at alpha 0.05 give 15 +- 3.8, and the band used below,
[3, 30] alarms, fails by chance with probability below 1e-4 (a valid but conservative test, as KS is on tied
scores, may sit at its lower end).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from components.conformal.calibration import ConformalClassifier, ConformalRegressor, set_metrics
from components.conformal.drift import DriftTest, classifier_scores
from components.scratch.linear import LinearNeuron
from components.scratch.predictors import ImagePredictor, RegressionPredictor

pytestmark = pytest.mark.unit


def flatten(X):
    return np.asarray(X, dtype=float).reshape(len(X), -1) / 255.0


@pytest.fixture(scope="module")
def digits():
    """A classifier trained on 700 upright digits, and the 1097 it never saw (calibration and test pools)."""
    data = load_digits()
    images = (data.images * 255 / 16).round().astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    train, pool = order[:700], order[700:]
    model = make_pipeline(FunctionTransformer(flatten), LogisticRegression(max_iter=2000)).fit(
        images[train], data.target[train]
    )
    return model, images[pool], data.target[pool]


def draw(rng, n_pool: int, n_cal: int, n_batch: int):
    order = rng.permutation(n_pool)
    return order[:n_cal], order[n_cal : n_cal + n_batch]


def test_the_warning_fires_on_a_shifted_data_set_and_coverage_there_is_lost(digits):
    model, images, labels = digits
    rotated = np.rot90(images, k=1, axes=(1, 2)).copy()  # the same digits, turned: a clearly shifted source
    fired, covered = [], []
    for seed in range(10):
        cal, batch = draw(np.random.default_rng(seed), len(images), 500, 100)
        calibrator = ConformalClassifier(model.classes_, "lac", (0.9,), drift_alpha=0.01).fit(
            model.predict_proba(images[cal]), labels[cal]
        )
        proba = model.predict_proba(rotated[batch])
        result = calibrator.drift(proba)
        fired.append(result.warning)
        covered.append(set_metrics(calibrator.predict_sets(proba)[:, :, 0], labels[batch], model.classes_)["coverage"])
        assert result.pvalue < 1e-4 and result.n == 100 and result.alpha == 0.01
    assert all(fired)
    assert np.mean(covered) < 0.8  # why the warning matters: 90% sets cover far less under the shift


def test_batches_of_the_calibration_source_raise_it_at_about_the_false_alarm_rate(digits):
    model, images, labels = digits
    proba = model.predict_proba(images)
    alarms = 0
    for seed in range(300):
        cal, batch = draw(np.random.default_rng(seed), len(images), 500, 100)
        calibrator = ConformalClassifier(model.classes_, "lac", (0.9,), drift_alpha=0.05).fit(proba[cal], labels[cal])
        alarms += calibrator.drift(proba[batch]).warning
    assert 3 <= alarms <= 30, alarms  # Binomial(300, 0.05): 15 +- 3.8


def test_the_served_classifier_reports_the_warning_per_batch(digits):
    model, images, labels = digits
    cal, batch = draw(np.random.default_rng(0), len(images), 500, 100)
    calibrator = ConformalClassifier(model.classes_, "aps", (0.9,)).fit(model.predict_proba(images[cal]), labels[cal])
    served = ImagePredictor(model, (8, 8)).with_conformal(calibrator, 0.9)
    same = served.predict_frame(images[batch])
    shifted = served.predict_frame(np.rot90(images[batch], k=1, axes=(1, 2)).copy())
    for frame in (same, shifted):
        assert frame["drift_pvalue"].nunique() == 1 and frame["drift_warning"].nunique() == 1  # one test per batch
        assert (frame["set_size"] == frame["prediction_set"].map(len)).all()
    assert not same["drift_warning"].any() and shifted["drift_warning"].all()
    assert same["drift_pvalue"].iloc[0] > 0.01 > shifted["drift_pvalue"].iloc[0]


def test_the_served_regressor_warns_when_its_inputs_move_out_of_the_calibration_range():
    rng = np.random.default_rng(0)
    celsius = rng.uniform(-20, 40, 400)
    fahrenheit = 1.8 * celsius + 32 + rng.normal(0, 1, 400)
    neuron = LinearNeuron(lr=0.1, epochs=300, seed=0).fit(celsius[:200, None], fahrenheit[:200])
    calibrator = ConformalRegressor(neuron, "absolute", (0.9,)).fit(celsius[200:300, None], fahrenheit[200:300])
    served = RegressionPredictor(neuron).with_conformal(calibrator, 0.9)
    same = served.predict_frame(celsius[300:])
    hot = served.predict_frame(rng.uniform(60, 100, 50))  # a sensor in another climate
    assert (same["lower"] <= same["fahrenheit"]).all() and (same["fahrenheit"] <= same["upper"]).all()
    assert not same["drift_warning"].any() and hot["drift_warning"].all()


def test_several_outputs_combine_by_bonferroni_and_missing_targets_take_no_part():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(400, 3))
    reference[::3, 1] = np.nan
    drift = DriftTest.fit(reference, alpha=0.05)
    moved = rng.normal(size=(100, 3))
    moved[:, 2] += 1.0  # one output shifts
    assert drift.check(moved).warning and drift.pvalue(moved) <= 1.0
    alarms = sum(
        DriftTest.fit(rng.normal(size=(400, 3)), 0.05).check(rng.normal(size=(100, 3))).warning for _ in range(200)
    )
    assert alarms <= 22  # Bonferroni keeps the false-alarm rate at or below alpha: Binomial(200, <=0.05), mean <= 10


def test_label_free_score_and_bad_settings():
    assert classifier_scores([[0.7, 0.3], [0.5, 0.5]]).tolist() == pytest.approx([0.3, 0.5])
    with pytest.raises(ValueError, match="unknown drift test 'chi2'"):
        DriftTest.fit([0.1, 0.2], test="chi2")
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        DriftTest.fit([0.1, 0.2], alpha=1.5)
    assert np.isnan(DriftTest.fit([0.1, 0.2]).pvalue(np.zeros(0)))
