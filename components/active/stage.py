"""The active-learning stage of a pipeline: simulate every configured strategy and random on the training pool.

The training split is the pool and its known labels are the oracle; accuracy is measured on the test split
after every round. The reference "all labels" accuracy is the same estimator recipe fitted on the whole pool.
The result is a ``Report``: per-strategy metrics, a child run per strategy and round, the learning-curve
figure and the label-efficiency table. Works for any project whose ``estimator(settings)`` is a scikit-learn
classifier and whose prepared data has X_train/y_train/X_test/y_test (every ImageClassificationProject).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone

from components.active.loop import RoundResult, simulate
from components.active.report import efficiency_table, format_ratio, learning_curve_figure
from components.active.settings import ActiveLearningSettings
from components.evaluation.report import ChildRun, Report
from components.settings import SettingsError


@dataclass
class ActiveLearningResult:
    """What the stage hands on: its report, and per strategy the training-split indices it had labelled last."""

    report: Report
    labelled: dict[str, np.ndarray] = field(default_factory=dict)

    def selected(self, al: ActiveLearningSettings) -> np.ndarray:
        """The training-split indices the selecting strategy acquired (``train_on: selected``)."""
        return self.labelled[al.selecting_strategy]


def restrict_training(data, indices: np.ndarray):
    """``data`` (a split dataclass) with its training split cut down to ``indices``: validation, test and
    calibration stay as they are, so a model trained on it is scored on the same test split."""
    indices = np.asarray(indices, dtype=int)
    if hasattr(data, "with_training"):  # splits kept in other fields than X_train/y_train (emojify's EmojiData)
        return data.with_training(indices)
    changes = {"X_train": data.X_train[indices], "y_train": data.y_train[indices]}
    if getattr(data, "paths_train", None) is not None:
        changes["paths_train"] = [data.paths_train[i] for i in indices]
    return dataclasses.replace(data, **changes)


def round_estimator(project, settings, al: ActiveLearningSettings):
    """The project's estimator, quiet, with the per-round epochs if the section sets them.

    A round trains on every label it has (``val_fraction=0``): a held-out slice of 20 labels would take one
    of each class's two and pick the epoch by those few points. A transfer model's rounds skip its fine-tuning
    phase (the head learns on the frozen base's features).
    """
    est = project.estimator(settings)
    updates = {"progress": False, "checkpoint_dir": None, "val_fraction": 0.0}
    if al.epochs:  # a torch estimator takes the train section; a NumPy one (numpy-dnn's) its own epochs, and
        # batch gradient descent (logistic-regression's) its iterations: one pass over the labels each
        updates |= {
            "train": est.get_params().get("train", settings.train).model_copy(update={"epochs": al.epochs}),
            "epochs": al.epochs,
            "iterations": al.epochs,
        }
    if "finetune" in est.get_params():  # a transfer model's rounds train its head on the frozen base (phase 1 only):
        # phase 2 back-propagates through the base, ten times a round's cost for a curve of the same shape
        updates["finetune"] = est.get_params()["finetune"].model_copy(update={"layers": 0})
    return est.set_params(**{k: v for k, v in updates.items() if k in est.get_params()})


def serial_map(function: Callable, kwargs_list: Sequence[dict], names: Sequence[str]) -> list:
    """Run ``function(**kwargs)`` for each item, in order, here (the default of ``run_active_learning``)."""
    return [function(**kwargs) for kwargs in kwargs_list]


def run_active_learning(
    project,
    data,
    settings,
    al: ActiveLearningSettings,
    on_round: Callable[[str, RoundResult], None] | None = None,
    map_calls: Callable[[Callable, Sequence[dict], Sequence[str]], list] = serial_map,
) -> ActiveLearningResult:
    """Every strategy's simulated loop on the same pool; the strategies are independent (each clones the
    estimator and draws from its own seeded generators), so ``map_calls(function, kwargs_list, names)`` may run
    them anywhere and at the same time (the pipeline passes one that runs them as Prefect tasks on Dask,
    flows/fanout.py); the report, its child runs and ``on_round`` are made here from the returned curves."""
    est = round_estimator(project, settings, al)
    X, y, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    rng = np.random.default_rng(settings.seed)
    pool_index = np.arange(len(y))  # pool position -> training-split index
    if al.pool_size and al.pool_size < len(y):  # large training splits: the curve's shape needs no 60k pool
        pool_index = np.sort(rng.choice(len(y), al.pool_size, replace=False))
        X, y = X[pool_index], y[pool_index]
    if al.label_budget is not None and al.label_budget > len(y):
        raise SettingsError(
            f"params.yaml: projects.{project.name}.active_learning.label_budget: {al.label_budget} is more than the "
            f"pool holds ({len(y)} training items)"
        )
    # train_on: selected runs every strategy up to the label budget; otherwise `rounds` rounds of query_size
    sizes = al.budget_schedule() if al.train_on == "selected" else [al.query_size] * al.rounds
    if al.test_size and al.test_size < len(y_test):  # scored every round: keep it affordable
        keep = np.sort(rng.choice(len(y_test), al.test_size, replace=False))
        X_test, y_test = X_test[keep], y_test[keep]
    full = float(clone(est).fit(X, y).score(X_test, y_test))
    strategies = list(dict.fromkeys(["random", *al.strategies, al.selecting_strategy]))
    common = dict(
        estimator=est,
        X=X,
        y=y,
        X_test=X_test,
        y_test=y_test,
        initial=al.initial_size,
        query_size=sizes,
        n_samples=al.mc_samples,
        warm_start=al.warm_start,
        seed=settings.seed,
        candidates=al.candidates,
    )
    simulated = map_calls(simulate, [{**common, "strategy": s} for s in strategies], strategies)
    curves, children, labelled = [], [], {}
    for strategy, curve in zip(strategies, simulated):
        for result in curve.rounds:
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
        curves.append(curve.frame())
        labelled[strategy] = np.sort(pool_index[np.concatenate([r.queried for r in curve.rounds]).astype(int)])
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
    report = Report(
        {k: v for k, v in metrics.items() if not np.isnan(v)},
        {"active_learning_curves": figure},
        {"active_learning_curves": curves_df, "active_learning_efficiency": table},
        children,
    )
    return ActiveLearningResult(report, labelled)


def budget_comparison(project, trained_model, data, settings, result: ActiveLearningResult) -> Report:
    """``train_on: selected``: the registered model (trained on the selected labels) beside the same recipe
    trained on every label and on random's labels at the same budget, all scored on the same test split.

    The recipe is the project's estimator(settings) with the project's validation split for early stopping, as
    the train stage fits it. Files: the selected training-split indices (and item names) as JSON.
    """
    import json

    al = settings.active_learning
    selected = result.selected(al)

    def fitted_on(indices) -> float:
        est = project.estimator(settings)
        quiet = {k: v for k, v in {"progress": False, "checkpoint_dir": None}.items() if k in est.get_params()}
        part = data if indices is None else restrict_training(data, indices)
        validation = () if getattr(part, "X_val", None) is None else (part.X_val, part.y_val)  # none: fit on all
        est.set_params(**quiet).fit(part.X_train, part.y_train, *validation)
        return float(est.score(data.X_test, data.y_test))

    metrics = {
        "al_selected_test_accuracy": float(trained_model.score(data.X_test, data.y_test)),
        "al_all_labels_test_accuracy": fitted_on(None),
        "al_random_at_budget_test_accuracy": fitted_on(result.labelled["random"]),
        "al_label_budget": float(len(selected)),
        "al_training_items": float(len(data.y_train)),
    }
    record = {
        "strategy": al.selecting_strategy,
        "label_budget": al.label_budget,
        "indices": selected.tolist(),
        "items": [data.paths_train[i] for i in selected] if getattr(data, "paths_train", None) else None,
    }
    return Report(metrics, files={"selected_labels.json": (json.dumps(record, indent=1) + "\n").encode()})
