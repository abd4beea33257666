"""The active-learning stage of a pipeline: simulate every configured strategy and random on the training pool.

The training split is the pool and its known labels are the oracle; accuracy is measured on the test split
after every round. The reference "all labels" accuracy is the same estimator recipe fitted on the whole pool.
The result is a ``Report``: per-strategy metrics, a child run per strategy and round, the learning-curve
figure and the label-efficiency table. Works for any project whose ``estimator(settings)`` is a scikit-learn
classifier and whose prepared data has X_train/y_train/X_test/y_test (every ImageClassificationProject).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import clone

from components.active.loop import RoundResult, simulate
from components.active.report import efficiency_table, format_ratio, learning_curve_figure
from components.active.settings import ActiveLearningSettings
from components.evaluation.report import ChildRun, Report


def round_estimator(project, settings, al: ActiveLearningSettings):
    """The project's estimator, quiet, with the per-round epochs if the section sets them.

    A round trains on every label it has (``val_fraction=0``): a held-out slice of 20 labels would take one
    of each class's two and pick the epoch by those few points.
    """
    est = project.estimator(settings)
    updates = {"progress": False, "checkpoint_dir": None, "val_fraction": 0.0} | (
        {"train": settings.train.model_copy(update={"epochs": al.epochs})} if al.epochs else {}
    )
    return est.set_params(**{k: v for k, v in updates.items() if k in est.get_params()})


def run_active_learning(
    project, data, settings, al: ActiveLearningSettings, on_round: Callable[[str, RoundResult], None] | None = None
) -> Report:
    est = round_estimator(project, settings, al)
    X, y, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    rng = np.random.default_rng(settings.seed)
    if al.pool_size and al.pool_size < len(y):  # large training splits: the curve's shape needs no 60k pool
        keep = np.sort(rng.choice(len(y), al.pool_size, replace=False))
        X, y = X[keep], y[keep]
    if al.test_size and al.test_size < len(y_test):  # scored every round: keep it affordable
        keep = np.sort(rng.choice(len(y_test), al.test_size, replace=False))
        X_test, y_test = X_test[keep], y_test[keep]
    full = float(clone(est).fit(X, y).score(X_test, y_test))
    strategies = ["random", *[s for s in al.strategies if s != "random"]]
    curves, children = [], []
    for strategy in strategies:

        def report(result: RoundResult, strategy=strategy) -> None:
            children.append(
                ChildRun(
                    f"al-{strategy}-round-{result.round}",
                    params={
                        "strategy": strategy,
                        "round": result.round,
                        "query_size": al.query_size,
                        "warm_start": al.warm_start,
                        "mc_samples": al.mc_samples,
                    },
                    metrics={"labels": result.labels, "test_accuracy": result.accuracy, "seconds": result.seconds},
                )
            )
            if on_round is not None:
                on_round(strategy, result)

        curve = simulate(
            est,
            strategy,
            X,
            y,
            X_test,
            y_test,
            initial=al.initial_size,
            query_size=al.query_size,
            rounds=al.rounds,
            n_samples=al.mc_samples,
            warm_start=al.warm_start,
            seed=settings.seed,
            candidates=al.candidates,
            on_round=report,
        )
        curves.append(curve.frame())
    curves_df = pd.concat(curves, ignore_index=True)
    table = efficiency_table(curves_df, full, al.targets)
    metrics = {"al_full_accuracy": full}
    for strategy, runs in curves_df.groupby("strategy", sort=False):
        metrics[f"al_{strategy}_final_accuracy"] = float(runs["accuracy"].iloc[-1])
    for row in table.itertuples():
        key = f"{row.strategy}_at_{round(100 * row.fraction)}pct"
        metrics[f"al_labels_{key}"] = float(row.labels_mean)  # NaN: never reached within the budget
        metrics[f"al_ratio_{key}"] = float(row.ratio_mean)
    table = table.assign(ratio=[format_ratio(r) for _, r in table.iterrows()])
    figure = learning_curve_figure(
        curves_df, full, al.targets, title=f"{project.name}: test accuracy against labels used"
    )
    return Report(
        {k: v for k, v in metrics.items() if not np.isnan(v)},
        {"active_learning_curves": figure},
        {"active_learning_curves": curves_df, "active_learning_efficiency": table},
        children,
    )
