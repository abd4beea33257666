"""linear-regression: one neuron learns Celsius -> Fahrenheit with hand-written gradients [seed 002].

Real format: a CSV with the header ``celsius,fahrenheit``. The offline sample is 160 generated pairs with
measurement noise; a good fit recovers the physics, w = 1.8 and b = 32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from components.data.formats import temperatures
from components.data.splits import random_split
from components.evaluation.plots import Panel, training_curves
from components.evaluation.report import Report
from components.projects.base import Project, Trained
from components.projects.settings.linear_regression import (
    CAPABILITIES,
    LinearRegressionSettings,
    TemperatureDataSettings,
)
from components.scratch.linear import LinearNeuron
from components.scratch.predictors import RegressionPredictor
from components.settings import SettingsError
from components.validation.expectations import DataValidationError, ValidationReport, run_suite


@dataclass
class TemperatureSplits:
    """X arrays are (n, 1) Celsius columns (scikit-learn layout), y arrays Fahrenheit; the names are the ones
    the conformal stage looks for. Readings repeat legitimately (0.01 C resolution), so rows carry their CSV
    line numbers as ids and the stage checks calibration/training overlap on those."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_cal: np.ndarray
    y_cal: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    ids_train: np.ndarray
    ids_cal: np.ndarray


def temperature_expectations(d: TemperatureDataSettings) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableRowCountToBeBetween(min_value=d.min_rows, meta={"explain": f"at least {d.min_rows} pairs"}),
        *(
            E.ExpectColumnValuesToNotBeNull(column=c, meta={"explain": f"{c} must be a number"})
            for c in temperatures.COLUMNS
        ),
        E.ExpectColumnValuesToBeBetween(
            column="celsius",
            min_value=d.celsius_min,
            max_value=d.celsius_max,
            meta={"explain": f"celsius in [{d.celsius_min}, {d.celsius_max}]"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="fahrenheit",
            min_value=d.celsius_min * 1.8 + 32 - 50,
            max_value=d.celsius_max * 1.8 + 32 + 50,
            meta={"explain": "fahrenheit within the range the celsius limits allow"},
        ),
    ]


def fit_figure(splits: TemperatureSplits, model: LinearNeuron) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(splits.X_train[:, 0], splits.y_train, s=10, label="train")
    ax.scatter(splits.X_test[:, 0], splits.y_test, s=14, marker="x", label="test")
    x_all = np.concatenate([splits.X_train[:, 0], splits.X_test[:, 0]])
    grid = np.array([x_all.min(), x_all.max()])
    ax.plot(grid, model.predict(grid), "k-", label=f"F = {model.coef_[0]:.3f} C + {model.intercept_:.2f}")
    ax.set(xlabel="Celsius", ylabel="Fahrenheit", title="Single neuron fit")
    ax.legend()
    fig.tight_layout()
    return fig


TRAINING_CURVES = (
    Panel({"train_loss": None}, "MSE (log scale)", "Training loss", yscale="log"),
    Panel({"weight": "w (-> 1.8)", "bias / 10": "b / 10 (-> 3.2)"}, "", "Parameters"),
)


def regression_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = pred - y_true
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1 - np.sum(err**2) / np.sum((y_true - y_true.mean()) ** 2)),
    }


class LinearRegression(Project):
    name = "linear-regression"
    capabilities = CAPABILITIES
    summary = "Single neuron, Celsius -> Fahrenheit, manual gradients (CSV celsius,fahrenheit)"
    Settings = LinearRegressionSettings
    primary_metric = "rmse"
    higher_is_better = False

    def make_sample(self, out_dir: Path) -> dict:
        return temperatures.generate(out_dir)

    def _table(self, settings: LinearRegressionSettings) -> pd.DataFrame:
        return temperatures.read_temperatures(Path(settings.data_dir) / settings.data.file)

    def validate(self, settings: LinearRegressionSettings) -> ValidationReport:
        table = self._table(settings)
        outcomes = run_suite(table, temperature_expectations(settings.data), name="temperatures", id_column="line")
        for o in outcomes:  # failing rows are CSV line numbers
            o.failing = [f"line {line}" for line in o.failing]
        report = ValidationReport(str(Path(settings.data_dir) / settings.data.file), outcomes, len(table))
        if not report.success:
            raise DataValidationError(report)
        return report

    def prepare(self, settings: LinearRegressionSettings) -> TemperatureSplits:
        if settings.conformal is not None and settings.conformal.calibrate_on == "validation":
            raise SettingsError(
                "projects.linear-regression.conformal.calibrate_on: linear-regression has no validation split; use held_out"
            )
        table = self._table(settings)
        calibration = settings.conformal.calibration if settings.conformal else 0
        held_out = {"test": settings.split.test, "calibration": calibration}
        # Unsorted: full-batch gradient descent sums the rows in this order, and the fit stays bit-for-bit as before.
        test, cal, train = random_split(len(table), held_out, settings.seed, sort=False).values()
        X, y, lines = table[["celsius"]].to_numpy(), table["fahrenheit"].to_numpy(), table["line"].to_numpy()
        return TemperatureSplits(X[train], y[train], X[cal], y[cal], X[test], y[test], lines[train], lines[cal])

    def train(
        self, data: TemperatureSplits, settings: LinearRegressionSettings, *, on_epoch, checkpoint_dir: Path
    ) -> Trained:
        t = settings.train
        model = LinearNeuron(lr=t.lr, epochs=t.epochs, standardize=t.standardize, seed=settings.seed)
        model.fit(data.X_train, data.y_train, on_epoch=on_epoch, log_every=t.log_every)
        return Trained(
            model,
            pd.DataFrame(model.history_),
            {
                "weight": float(model.coef_[0]),
                "bias": model.intercept_,
                "train": len(data.y_train),
                "calibration": len(data.y_cal),
                "test": len(data.y_test),
            },
        )

    def evaluate(self, trained: Trained, data: TemperatureSplits, settings) -> Report:
        model = trained.model
        pred = model.predict(data.X_test)
        metrics = {
            **regression_metrics(data.y_test, pred),
            "weight": float(model.coef_[0]),
            "bias": float(model.intercept_),
        }
        # b / 10: w and b on one scale, so both can be seen reaching 1.8 and 32.
        history = trained.history.assign(**{"bias / 10": trained.history["bias"] / 10})
        figures = {"fit": fit_figure(data, model), "training_curves": training_curves(history, TRAINING_CURVES)}
        tables = {
            "history": trained.history,
            "test_predictions": pd.DataFrame(
                {"celsius": data.X_test[:, 0], "fahrenheit": data.y_test, "predicted": pred}
            ),
        }
        return Report(metrics, figures, tables)

    def score(self, model, data: TemperatureSplits, settings) -> dict[str, float]:
        return regression_metrics(data.y_test, model.predict(data.X_test)["fahrenheit"].to_numpy(dtype=float))

    def predictor(self, trained: Trained, data: TemperatureSplits, settings):
        return RegressionPredictor(trained.model), data.X_test[:5]
