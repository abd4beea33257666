"""Conformal prediction (MAPIE 1.x): coverage as promised, sets that shrink with the confidence level,
refusal to calibrate on seen data, and sets served by the registered model.

How far may empirical coverage stray from the target? (the tolerance every coverage test below uses)

Split conformal at level 1 - a with n calibration scores (continuous, so no ties) thresholds at the k-th smallest
score, k = ceil((n + 1)(1 - a)). Given the calibration set, a fresh point is covered with probability C, the
probability mass below that threshold; over calibration sets C ~ Beta(k, n + 1 - k) (Vovk 2012; Angelopoulos &
Bates 2021, sec. 3.2), so

    E[C] = k / (n + 1)                 in [1 - a, 1 - a + 1/(n + 1))
    Var C = k (n + 1 - k) / ((n + 1)^2 (n + 2))           ~ a (1 - a) / n.

The empirical coverage c on m test points is Binomial(m, C) / m given C; by the law of total variance

    Var c = E[C (1 - C)] / m + Var C = (E[C] (1 - E[C]) - Var C) / m + Var C.

With n and m in the thousands c is close to normal, so |c - E[C]| <= 4 sd fails by chance with probability ~6e-5
per check. The checks are seeded (deterministic); the bound shows the seed was not picked to pass. Methods whose
scores tie (Top-K: an integer rank) or that always add the last label (APS/RAPS not randomized) are conservative:
they only promise c >= E[C] - 4 sd. RAPS sets aside ceil(0.2 n) calibration points to tune its penalty, so its n
is the remainder.
"""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LinearRegression, LogisticRegression

from components.conformal.calibration import (
    CalibrationOverlapError,
    ConformalClassifier,
    ConformalRegressor,
    ConformalSettings,
    calibrate_classifier,
    calibrate_regressor,
    check_unseen,
    interval_metrics,
    set_metrics,
)


def coverage_band(n: int, m: int, confidence: float, sds: float = 4.0) -> tuple[float, float]:
    """[low, high] for the empirical coverage of m test points after calibrating on n (module docstring)."""
    k = math.ceil((n + 1) * confidence)
    mean = k / (n + 1)
    var_c = k * (n + 1 - k) / ((n + 1) ** 2 * (n + 2))
    sd = math.sqrt((mean * (1 - mean) - var_c) / m + var_c)
    return mean - sds * sd, mean + sds * sd


N_CAL, N_TEST, N_CLASSES = 8000, 8000, 10


@pytest.fixture(scope="module")
def blobs():
    """An exchangeable 10-class problem a linear model gets only partly right, so sets must grow to cover."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=1.5, size=(N_CLASSES, 5))
    n = 2000 + N_CAL + N_TEST
    y = rng.integers(0, N_CLASSES, n)
    X = centres[y] + rng.normal(size=(n, 5))
    model = LogisticRegression(max_iter=500).fit(X[:2000], y[:2000])
    cal, test = slice(2000, 2000 + N_CAL), slice(2000 + N_CAL, None)
    return model, X[:2000], X[cal], y[cal], X[test], y[test]


@pytest.mark.unit
@pytest.mark.parametrize(
    "method,randomized,exact",
    [
        ("lac", False, True),
        ("aps", True, True),
        ("raps", True, True),
        ("aps", False, False),
        ("raps", False, False),
        ("top_k", False, False),
    ],
)
def test_coverage_lies_within_the_binomial_band_of_the_target(blobs, method, randomized, exact):
    model, X_train, X_cal, y_cal, X_test, y_test = blobs
    levels = (0.8, 0.9, 0.95)
    calibrator = calibrate_classifier(
        model, X_cal, y_cal, seen={"training": X_train}, method=method, confidence_levels=levels, randomized=randomized
    )
    sets = calibrator.predict_sets(model.predict_proba(X_test))
    n = N_CAL - math.ceil(0.2 * N_CAL) if method == "raps" else N_CAL
    for i, level in enumerate(levels):
        coverage = set_metrics(sets[:, :, i], y_test, model.classes_)["coverage"]
        low, high = coverage_band(n, N_TEST, level)
        assert coverage >= low, f"{method} at {level}: coverage {coverage:.4f} below {low:.4f}"
        if exact:
            assert coverage <= high, f"{method} at {level}: coverage {coverage:.4f} above {high:.4f}"


@pytest.mark.unit
@pytest.mark.parametrize("method", ["lac", "aps", "raps", "top_k"])
def test_sets_shrink_as_the_confidence_level_drops(blobs, method):
    model, X_train, X_cal, y_cal, X_test, _ = blobs
    levels = (0.6, 0.8, 0.9, 0.95, 0.99)
    calibrator = calibrate_classifier(
        model, X_cal, y_cal, seen={"training": X_train}, method=method, confidence_levels=levels
    )
    sets = calibrator.predict_sets(model.predict_proba(X_test))
    sizes = sets.sum(axis=1).mean(axis=0)
    assert sizes[0] < sizes[-1] and np.all(np.diff(sizes) >= 0), f"{method}: mean set sizes {sizes}"
    if method != "top_k":  # Top-K moves in whole labels, so two nearby levels may share a k
        assert np.all(np.diff(sizes) > 0), f"{method}: mean set sizes {sizes} do not grow with the level"
    if method == "lac":  # one threshold on one score: each set holds the set of the level below it
        assert np.all(sets[:, :, :-1] <= sets[:, :, 1:])


class QuantileLinear:
    """A linear model with homoscedastic residual quantiles: the smallest model offering predict_quantiles."""

    def fit(self, X, y):
        self.line_ = LinearRegression().fit(X, y)
        self.n_features_in_ = self.line_.n_features_in_
        self.residuals_ = y - self.line_.predict(X)
        return self

    def predict(self, X):
        return self.line_.predict(X)

    def predict_quantiles(self, X, quantiles):
        return self.line_.predict(X)[:, None] + np.quantile(self.residuals_, quantiles)[None, :]


@pytest.mark.unit
@pytest.mark.parametrize("method", ["absolute", "cqr"])
def test_intervals_cover_at_the_target_and_widen_with_confidence(method):
    rng = np.random.default_rng(1)
    n_train = 500
    x = rng.uniform(-20, 40, size=(n_train + N_CAL + N_TEST, 1))
    y = 1.8 * x[:, 0] + 32 + rng.standard_t(df=4, size=len(x))  # heavy tails: a Gaussian interval would miss
    model = QuantileLinear().fit(x[:n_train], y[:n_train])
    cal, test = slice(n_train, n_train + N_CAL), slice(n_train + N_CAL, None)
    levels = (0.8, 0.9, 0.95)
    calibrator = calibrate_regressor(
        model,
        x[cal],
        y[cal],
        seen={"training": x[:n_train]},
        ids_cal=np.arange(len(x))[cal],
        ids_seen={"training": np.arange(n_train)},
        method=method,
        confidence_levels=levels,
    )
    point, intervals = calibrator.predict_intervals(x[test])
    assert point.shape == (N_TEST,) and intervals.shape == (N_TEST, 2, len(levels))
    widths = []
    for i, level in enumerate(levels):
        m = interval_metrics(intervals[:, :, i], y[test])
        low, high = coverage_band(N_CAL, N_TEST, level)
        assert low <= m["coverage"] <= high, (
            f"{method} at {level}: coverage {m['coverage']:.4f} not in [{low:.4f}, {high:.4f}]"
        )
        widths.append(m["mean_width"])
    assert np.all(np.diff(widths) > 0)


@pytest.mark.unit
def test_each_output_of_a_multi_output_model_covers_within_the_band_on_the_rows_where_it_is_present():
    """facial-keypoints' case, small: 3 outputs, a third of one output's targets missing; each output is calibrated
    on its own present rows (n differs per output) and covers within that n's band."""
    rng = np.random.default_rng(2)
    n_cal, n_test = 600, 4000
    X = rng.normal(size=(n_cal + n_test, 2))
    Y = X @ np.array([[1.0, -1.0, 0.5], [0.5, 2.0, -1.0]]) + rng.standard_t(df=5, size=(len(X), 3))

    class Linear:  # prefit: the noise-free part of the targets
        def predict(self, X):
            return np.asarray(X) @ np.array([[1.0, -1.0, 0.5], [0.5, 2.0, -1.0]])

    Y_cal = Y[:n_cal].copy()
    Y_cal[::3, 1] = np.nan
    levels = (0.8, 0.9)
    calibrator = ConformalRegressor(Linear(), "absolute", levels).fit(X[:n_cal], Y_cal)  # nothing trained
    _, intervals = calibrator.predict_intervals(X[n_cal:])
    assert intervals.shape == (n_test, 2, len(levels), 3)
    for j in range(3):
        n = int((~np.isnan(Y_cal[:, j])).sum())
        for i, level in enumerate(levels):
            m = interval_metrics(intervals[:, :, i, j], Y[n_cal:, j])
            low, high = coverage_band(n, n_test, level)
            assert low <= m["coverage"] <= high, (j, level, n, m["coverage"], low, high)


@pytest.mark.unit
def test_the_stage_gives_intervals_for_the_linear_regression_neuron_checking_overlap_by_row_id():
    """The conformal stage on the linear-regression project's own scikit-learn-style model: Celsius values
    repeat legitimately (rounded to 0.01 C), so the splits carry CSV line numbers and overlap is checked on those."""
    from types import SimpleNamespace

    from components.conformal.stage import run_conformal
    from components.scratch.linear import LinearNeuron

    rng = np.random.default_rng(3)
    celsius = np.round(rng.uniform(-40, 60, 200 + N_CAL + N_TEST), 0)[:, None]  # whole degrees: many repeats
    fahrenheit = 1.8 * celsius[:, 0] + 32 + rng.normal(0, 1.5, len(celsius))
    tr, cal, te = slice(0, 200), slice(200, 200 + N_CAL), slice(200 + N_CAL, None)
    lines = np.arange(len(celsius)) + 2  # CSV line numbers: line 1 is the header
    data = SimpleNamespace(
        X_train=celsius[tr],
        y_train=fahrenheit[tr],
        X_cal=celsius[cal],
        y_cal=fahrenheit[cal],
        X_test=celsius[te],
        y_test=fahrenheit[te],
        ids_train=lines[tr],
        ids_cal=lines[cal],
    )
    model = LinearNeuron(epochs=300).fit(data.X_train, data.y_train)
    calibration = run_conformal(model, data, ConformalSettings(methods=("absolute",), confidence_levels=(0.9, 0.95)))
    metrics = calibration.report.metrics
    for level in (0.9, 0.95):
        low, high = coverage_band(N_CAL, N_TEST, level)
        assert low <= metrics[f"conformal_absolute_{level * 100:.0f}_coverage"] <= high
    # Gaussian noise of sd 1.5 F: the 90% interval is about 2 x 1.645 x 1.5 = 4.9 F wide.
    assert metrics["conformal_absolute_90_mean_width"] == pytest.approx(4.9, rel=0.1)
    assert calibration.served.predict_intervals(np.array([[20.0]]))[1].shape == (1, 2, 2)
    leaked = SimpleNamespace(**{**vars(data), "ids_cal": np.r_[lines[cal][:-1], lines[0]]})
    with pytest.raises(
        CalibrationOverlapError, match="1 of 8000 calibration rows also occur in the training data \\(ids"
    ):
        run_conformal(model, leaked, ConformalSettings(methods=("absolute",)))


@pytest.mark.unit
def test_calibrating_on_rows_the_model_was_trained_on_is_refused(blobs):
    model, X_train, X_cal, y_cal, _, _ = blobs
    leaked = np.concatenate([X_cal[:100], X_train[[3, 7]]])
    with pytest.raises(
        CalibrationOverlapError,
        match=r"2 of 102 calibration rows also occur in the training data"
        r".*first calibration rows: \[100, 101\]",
    ):
        calibrate_classifier(model, leaked, np.r_[y_cal[:100], 0, 0], seen={"training": X_train})


@pytest.mark.unit
def test_calibrating_on_images_used_for_early_stopping_is_refused():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(30, 16, 16, 3), dtype=np.uint8)
    check_unseen(images[20:], {"training": images[:10], "validation": images[10:20]})  # disjoint: fine
    with pytest.raises(
        CalibrationOverlapError,
        match=r"5 of 15 calibration rows also occur in the validation data "
        r"\(identical content; first calibration rows: \['with_mask/15.png'",
    ):
        check_unseen(
            images[15:],
            {"training": images[:10], "validation": images[10:20]},
            names_cal=[f"with_mask/{i}.png" for i in range(15, 30)],
        )


@pytest.mark.unit
def test_repeated_values_are_no_overlap_when_rows_carry_ids():
    x = np.array([[20.0], [25.0], [20.0], [30.0]])  # 20 C measured twice: a real repeat, not a leak
    with pytest.raises(CalibrationOverlapError):
        check_unseen(x[2:], {"training": x[:2]})
    check_unseen(x[2:], {"training": x[:2]}, ids_cal=[2, 3], ids_seen={"training": [0, 1]})


@pytest.mark.unit
def test_settings_name_what_is_inconsistent():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="mix classifier"):
        ConformalSettings(methods=("lac", "absolute"))
    with pytest.raises(ValidationError, match="serve_confidence 0.8 is not among"):
        ConformalSettings(confidence_levels=(0.9,), serve_confidence=0.8)
    assert ConformalSettings(methods=("aps", "lac"), confidence_levels=(0.95, 0.9)).served == ("aps", 0.95)


@pytest.mark.unit
def test_binary_problems_ask_for_lac_by_name():
    proba = np.array([[0.7, 0.3], [0.2, 0.8]] * 10)
    with pytest.raises(ValueError, match="two-class problems with 'lac' only"):
        ConformalClassifier(np.array(["a", "b"]), "aps").fit(proba, np.array(["a", "b"] * 10))


# ---------------------------------------------------------------------------------------------------------------
# The pipeline: calibrated on its own split, logged to the parent run, served by the registered model.


@pytest.fixture(scope="module")
def conformal_run(prefect_server, tmp_path_factory, sample_data):
    import yaml

    from flows.pipeline import project_pipeline
    from tests.conftest import REPO

    root = tmp_path_factory.mktemp("conformal-root")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = {
        **params["projects"]["face-mask"],
        "data_dir": str(sample_data("face-mask")),
        "experiment": "face-mask-conformal-test",
    }
    section.pop("active_learning", None)
    section["train"] = {**section["train"], "epochs": 3}
    section["conformal"] = {"methods": ["lac"], "confidence_levels": [0.9, 0.8], "calibration": 0.15}
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params["defaults"], "projects": {"face-mask": section}})
    )
    return project_pipeline(project="face-mask", root=str(root))


@pytest.mark.unit
def test_the_calibration_split_is_disjoint_and_leaves_test_and_validation_alone(sample_data):
    from components.projects import get_project

    project = get_project("face-mask")
    base = project.Settings(data_dir=sample_data("face-mask"), data={"classes": ["with_mask", "without_mask"]})
    plain = project.prepare(base)
    held = project.prepare(base.model_copy(update={"conformal": ConformalSettings(calibration=0.15)}))
    assert plain.X_cal is None and len(held.y_cal) >= 0.1 * (len(plain.y_train) + len(plain.y_val) + len(plain.y_test))
    np.testing.assert_array_equal(plain.X_test, held.X_test)
    np.testing.assert_array_equal(plain.X_val, held.X_val)
    assert len(held.y_train) == len(plain.y_train) - len(held.y_cal)
    check_unseen(held.X_cal, {"training": held.X_train, "validation": held.X_val, "test": held.X_test})


@pytest.mark.integration
def test_the_stage_logs_coverage_size_and_per_class_coverage_to_the_parent_run(conformal_run):
    client = MlflowClient()
    run = client.get_run(conformal_run["run_id"])
    metrics = run.data.metrics
    for level in ("90", "80"):
        for name in ("coverage", "mean_set_size", "singleton_rate", "empty_rate", "min_class_coverage"):
            assert f"conformal_lac_{level}_{name}" in metrics
    assert metrics["conformal_lac_90_mean_set_size"] >= metrics["conformal_lac_80_mean_set_size"]
    # ~80 test images: the band of the module docstring at 4 sd is about +-0.15 around 0.9.
    assert metrics["conformal_lac_90_coverage"] >= 0.75
    # the served model's drift warning on the test split (same source as the calibration rows): logged, and off
    assert 0 <= metrics["conformal_drift_pvalue"] <= 1 and metrics["conformal_drift_alpha"] == 0.01
    assert metrics["conformal_drift_warning"] == 0.0
    assert "plots/conformal_coverage_size.png" in {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    tables = {a.path for a in client.list_artifacts(run.info.run_id, "tables")}
    assert {"tables/conformal_summary.csv", "tables/conformal_per_class.csv"} <= tables
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    child = next(c for c in children if c.info.run_name == "conformal-lac")
    assert "class_coverage_90_with_mask" in child.data.metrics


@pytest.mark.integration
def test_mlflow_models_serve_answers_an_image_of_another_size_with_label_probabilities_and_set(
    conformal_run, sample_data, mlflow_serve
):
    from PIL import Image

    # a sample face (the net trained at 64x64), sent at 96x80 as a user's photo would come: resized inside
    face = sorted((sample_data("face-mask") / "without_mask").glob("*.png"))[0]
    image = np.asarray(Image.open(face).convert("RGB").resize((80, 96)), dtype=np.uint8)
    post = mlflow_serve(f"models:/face-mask/{conformal_run['model_version']}")
    status, body = post({"inputs": image[None].tolist()})
    assert status == 200, body
    (row,) = body["predictions"]
    assert row["label"] in {"with_mask", "without_mask"}
    assert row["p_with_mask"] + row["p_without_mask"] == pytest.approx(1, abs=1e-5)
    assert row["probability"] == pytest.approx(max(row["p_with_mask"], row["p_without_mask"]), abs=1e-6)
    assert set(row["prediction_set"]) <= {"with_mask", "without_mask"} and len(row["prediction_set"]) == row["set_size"]
    status, body = post({"inputs": [[1, 2, 3]]})  # not an image: refused with a message, not a crash
    assert status == 400 and body["message"]


@pytest.mark.integration
def test_the_registered_model_serves_the_prediction_set_at_the_configured_confidence(conformal_run, sample_data):
    from components.data.formats.images import load_images, scan_image_folder

    version = MlflowClient().get_model_version("face-mask", conformal_run["model_version"])
    assert version.tags["conformal.method"] == "lac" and version.tags["conformal.confidence"] == "0.9"
    model = mlflow.pyfunc.load_model(f"models:/face-mask/{conformal_run['model_version']}")
    root = sample_data("face-mask")
    manifest = scan_image_folder(root)
    picks = np.r_[0:20, len(manifest) - 20 : len(manifest)]
    out = model.predict(load_images(root, manifest, 64)[picks])
    assert list(out.columns) == [
        "label",
        "probability",
        "p_with_mask",
        "p_without_mask",
        "prediction_set",
        "set_size",
        "drift_pvalue",
        "drift_warning",
    ]
    assert out["drift_pvalue"].nunique() == 1 and out["drift_warning"].dtype == bool  # one test per batch
    assert all(
        set(s) <= {"with_mask", "without_mask"} and len(s) == n for s, n in zip(out["prediction_set"], out["set_size"])
    )
    truth = manifest["label"].to_numpy()[picks]
    assert np.mean([t in s for t, s in zip(truth, out["prediction_set"])]) >= 0.75
    singletons = out["set_size"] == 1  # a one-label set is the model's own prediction
    assert all(s[0] == label for s, label in zip(out["prediction_set"][singletons], out["label"][singletons]))
