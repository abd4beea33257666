"""MC dropout: the uncertainty measures, calibration, and the mnist-mc-dropout acceptance on a shrunk config."""

from __future__ import annotations

import numpy as np
import pytest

from components.evaluation.uncertainty import (
    expected_entropy,
    mutual_information,
    predictive_entropy,
    reliability_figure,
    reliability_table,
)

# The mc_run tests train mnist-mc-dropout through its own stages (minutes on 2 cores): e2e; the rest are units.


@pytest.mark.unit
def test_entropy_is_zero_for_certain_and_log_c_for_uniform_predictions():
    certain = np.tile(np.eye(4)[[0, 2]], (5, 1, 1))  # T=5 passes, 2 inputs, 4 classes
    uniform = np.full((5, 2, 4), 0.25)
    assert np.allclose(predictive_entropy(certain), 0, atol=1e-9)
    assert np.allclose(predictive_entropy(uniform), np.log(4))


@pytest.mark.unit
def test_mutual_information_measures_disagreement_between_passes():
    # Every pass is sure, but half the passes say class 0 and half class 1: all uncertainty is epistemic.
    disagree = np.stack([np.eye(2)[[0]]] * 5 + [np.eye(2)[[1]]] * 5)
    assert np.allclose(predictive_entropy(disagree), np.log(2))
    assert np.allclose(expected_entropy(disagree), 0, atol=1e-9)
    assert np.allclose(mutual_information(disagree), np.log(2))
    # Every pass says 50/50: as uncertain, but the passes agree, so none of it is epistemic.
    agree = np.full((10, 1, 2), 0.5)
    assert np.allclose(predictive_entropy(agree), np.log(2))
    assert np.allclose(mutual_information(agree), 0, atol=1e-9)


@pytest.mark.unit
def test_reliability_table_and_ece_tell_calibrated_from_overconfident():
    rng = np.random.default_rng(0)
    n = 20000
    confidence = rng.uniform(0.5, 1.0, n)
    proba = np.stack([confidence, 1 - confidence], axis=1)
    calibrated_labels = np.where(rng.random(n) < confidence, 0, 1)  # right exactly as often as it claims
    always_wrong_half = np.where(rng.random(n) < 0.5, 0, 1)  # claims 75% on average, is right 50%
    table, ece_calibrated = reliability_table(proba, calibrated_labels, bins=10)
    _, ece_overconfident = reliability_table(proba, always_wrong_half, bins=10)
    assert table["count"].sum() == n
    assert ece_calibrated < 0.02
    assert ece_overconfident > 0.2
    fig = reliability_figure(table, ece_calibrated)
    assert fig.axes[0].get_xlabel().startswith("confidence")


@pytest.fixture(scope="module")
def mc_run(sample_data, tmp_path_factory):
    """mnist-mc-dropout trained on a shrunk config (6,000 Fashion-MNIST images, 4 epochs) and evaluated."""
    from pathlib import Path

    import yaml

    from components.projects import get_project

    project = get_project("mnist-mc-dropout")
    section = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())["projects"][
        project.name
    ]
    section.update(data_dir=str(sample_data(project.name)), device="cpu")
    section["data"] = {**section["data"], "train_limit": 6000, "test_limit": 1000}
    section["train"] = {**section["train"], "epochs": 4}
    section["uncertainty"] = {**section["uncertainty"], "passes": 20, "max_inputs": 600}
    settings = project.Settings.model_validate(section)
    data = project.prepare(settings)
    trained = project.train(
        data, settings, on_epoch=lambda stats: None, checkpoint_dir=tmp_path_factory.mktemp("mc-checkpoints")
    )
    return project, settings, data, trained, project.evaluate(trained, data, settings)


@pytest.mark.e2e
def test_mc_dropout_is_more_uncertain_out_of_distribution(mc_run):
    _, _, _, _, evaluation = mc_run
    m = evaluation.metrics
    assert m["mc_accuracy"] > 0.65  # 10 classes: chance is 0.1
    # Acceptance: mean predictive entropy on OOD inputs at least twice that on test inputs.
    assert m["ood_entropy_ratio"] >= 2.0, {k: round(v, 3) for k, v in m.items()}
    for name in ("rotated", "digits"):
        assert m[f"{name}_entropy_ratio"] > 1.5, m
        assert m[f"{name}_mutual_information"] > m["test_mutual_information"], m
    assert {"reliability_diagram", "uncertainty_by_set"} <= set(evaluation.figures)
    assert set(evaluation.tables["uncertainty"]["set"]) == {"test", "rotated", "digits"}
    assert 0 <= m["ece"] < 0.2


@pytest.mark.e2e
def test_mc_passes_vary_but_repeat_under_the_seed(mc_run):
    _, _, data, trained, _ = mc_run
    est = trained.model
    a = est.predict_proba_samples(data.X_test[:50], 8)
    b = est.predict_proba_samples(data.X_test[:50], 8)
    assert a.shape == (8, 50, 10)
    assert np.array_equal(a, b)  # seeded: same numbers twice
    assert np.abs(a[0] - a[1]).max() > 1e-3  # dropout really is on: passes differ
    assert np.array_equal(est.predict_proba(data.X_test[:50]), est.predict_proba(data.X_test[:50]))


@pytest.mark.e2e
def test_served_predictions_carry_their_uncertainty(mc_run):
    project, settings, data, trained, _ = mc_run
    predictor, example = project.predictor(trained, data, settings)
    frame = predictor.predict_frame(example)
    assert list(frame.columns[:4]) == ["label", "probability", "predictive_entropy", "mutual_information"]
    assert np.allclose(frame[[f"p_{c}" for c in range(10)]].sum(axis=1), 1)
    assert (frame["predictive_entropy"] >= frame["mutual_information"]).all()
