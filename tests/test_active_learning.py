"""Active learning: query strategies pick what they should, the loop moves items from pool to labels, the
pipeline stage logs its rounds, and `dlfolio label` round-trips a human's labels."""

from __future__ import annotations

import numpy as np
import pytest
from modAL.models import ActiveLearner
from sklearn.base import BaseEstimator, ClassifierMixin

from components.active.loop import PoolLearner, initial_indices, label_efficiency, simulate
from components.active.strategies import STRATEGIES, bald_scores, make_strategy, power_top_k, variation_ratio_scores


class TableClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose predictions are given: row i of X is item id X[i, 0]; probabilities come from tables.

    Lets a test construct the pool's predictions exactly; modAL sees it as any scikit-learn classifier.
    """

    def __init__(self, proba=None, samples=None):
        self.proba = proba
        self.samples = samples

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.asarray(self.proba)[np.asarray(X)[:, 0]]

    def predict_proba_samples(self, X, n_samples=20):
        return np.asarray(self.samples)[:, np.asarray(X)[:, 0]]


def query(strategy: str, n: int, proba=None, samples=None) -> set[int]:
    ids = np.arange(len(proba if proba is not None else samples[0]))[:, None]
    est = TableClassifier(proba, samples)
    learner = ActiveLearner(est, make_strategy(strategy, n_samples=4), X_training=ids[:2], y_training=[0, 1])
    picked, _ = learner.query(ids, n_instances=n)
    return set(np.asarray(picked).tolist())


POOL_PROBA = [[0.99, 0.01], [0.5, 0.5], [0.9, 0.1], [0.55, 0.45], [0.05, 0.95], [0.8, 0.2]]


@pytest.mark.unit
def test_margin_least_confident_and_entropy_pick_the_ambiguous_points():
    assert query("margin", 2, POOL_PROBA) == {1, 3}
    assert query("least_confident", 2, POOL_PROBA) == {1, 3}
    assert query("entropy", 2, POOL_PROBA) == {1, 3}
    three = [[0.34, 0.33, 0.33], [0.6, 0.39, 0.01], [0.98, 0.01, 0.01], [0.5, 0.25, 0.25]]
    assert query("margin", 1, three) == {0}
    assert query("least_confident", 1, three) == {0}


@pytest.mark.unit
def test_bald_is_highest_where_mc_samples_disagree_not_where_they_agree_on_uniform():
    # item 0: the passes disagree (half certain of class 0, half of class 1) - epistemic uncertainty
    # item 1: every pass says 50/50 - aleatoric noise that more labels would not remove
    # item 2: every pass is confident in class 0
    samples = np.array(
        [
            [[1.0, 0.0], [0.5, 0.5], [0.95, 0.05]],
            [[0.0, 1.0], [0.5, 0.5], [0.95, 0.05]],
            [[1.0, 0.0], [0.5, 0.5], [0.95, 0.05]],
            [[0.0, 1.0], [0.5, 0.5], [0.95, 0.05]],
        ]
    )
    scores = bald_scores(samples)
    assert scores[0] == pytest.approx(np.log(2), abs=1e-6)  # the most mutual information two classes allow
    assert scores[1] == pytest.approx(0.0, abs=1e-9)
    assert scores[2] == pytest.approx(0.0, abs=1e-9)
    assert query("bald", 1, samples=samples) == {0}
    # entropy of the mean prediction cannot tell items 0 and 1 apart; BALD can
    assert variation_ratio_scores(samples).tolist() == pytest.approx([0.5, 0.0, 0.0])
    assert 0 in query("variation_ratios", 1, samples=samples)


@pytest.mark.unit
def test_max_entropy_and_mc_margin_rank_by_the_mean_of_the_passes_not_by_one_pass():
    # item 0: every pass is sure, but of different classes - the mean is 50/50, the most ambiguous
    # item 1: every pass says 70/30 - ambiguous in every pass, but less so on average than item 0
    # item 2: every pass is confident in class 0
    samples = np.array(
        [
            [[1.0, 0.0], [0.7, 0.3], [0.95, 0.05]],
            [[0.0, 1.0], [0.7, 0.3], [0.95, 0.05]],
        ]
    )
    assert query("max_entropy", 1, samples=samples) == {0}
    assert query("mc_margin", 1, samples=samples) == {0}
    assert query("mc_margin", 2, samples=samples) == {0, 1}
    # a single pass (what deterministic margin sees, dropout off) may call item 0 certain
    assert query("margin", 1, proba=samples[0]) == {1}


@pytest.mark.unit
def test_power_bald_skips_agreeing_items_and_draws_in_proportion_to_the_bald_score():
    disagree, agree = [[1.0, 0.0], [0.0, 1.0]], [[0.9, 0.1], [0.9, 0.1]]
    samples = np.array([[disagree[t % 2]] * 3 + [agree[t % 2]] * 3 for t in range(4)])  # items 0-2 vs 3-5
    assert query("power_bald", 3, samples=samples) == {0, 1, 2}

    rng = np.random.default_rng(0)
    first = [power_top_k(np.array([3.0, 1.0]), 1, rng)[0] for _ in range(4000)]
    assert np.mean(np.array(first) == 0) == pytest.approx(0.75, abs=0.03)  # p = 3 / (3 + 1)


@pytest.mark.unit
def test_power_bald_spreads_a_batch_where_top_k_always_takes_the_same_items():
    scores = np.linspace(1.0, 1.2, 50)  # many near-equal scores: top-k's pick hinges on tiny differences
    rng = np.random.default_rng(0)
    batches = {tuple(sorted(power_top_k(scores, 5, rng))) for _ in range(20)}
    assert len(batches) > 10
    assert all(len(set(b)) == 5 for b in batches)


@pytest.mark.unit
def test_power_mc_margin_never_draws_items_the_mc_predictive_is_sure_of_and_favours_the_ties():
    # items 0-1: the passes disagree, so the mean is 50/50 (1 - margin = 1); item 2: every pass 70/30
    # (1 - margin = 0.6); items 3-5: every pass certain (1 - margin = 0: never drawn)
    samples = np.array(
        [
            [[1.0, 0.0], [0.0, 1.0], [0.7, 0.3]] + [[1.0, 0.0]] * 3,
            [[0.0, 1.0], [1.0, 0.0], [0.7, 0.3]] + [[1.0, 0.0]] * 3,
        ]
    )
    assert query("power_mc_margin", 3, samples=samples) == {0, 1, 2}
    learner = type("L", (), {"estimator": TableClassifier(samples=samples)})()
    pool = np.arange(6)[:, None]
    draw = make_strategy("power_mc_margin", n_samples=2, seed=0)
    firsts = [draw(learner, pool, 1)[0] for _ in range(3000)]
    share = np.bincount(firsts, minlength=6) / len(firsts)
    assert share[3:].sum() == 0
    assert share[0] == pytest.approx(1 / 2.6, abs=0.03) and share[2] == pytest.approx(0.6 / 2.6, abs=0.03)


def batch_mutual_information(samples: np.ndarray, batch: list[int]) -> float:
    """I(y_batch; w) by brute force: every joint label configuration of the batch, from (T, N, classes) samples."""
    T, _, C = samples.shape
    joint = np.ones((T, 1))
    for j in batch:  # (T, configurations so far x C): prod_j p_t(y_j)
        joint = (joint[:, :, None] * samples[:, j, None, :]).reshape(T, -1)
    marginal = joint.mean(axis=0)
    entropy = -(marginal * np.log(marginal)).sum()
    conditional = sum(-(samples[:, j] * np.log(samples[:, j])).sum(-1).mean() for j in batch)
    return float(entropy - conditional)


@pytest.mark.unit
def test_batchbald_starts_with_balds_best_item_and_skips_one_that_repeats_an_earlier_pick():
    # items 0 and 1: the passes split 0/1 by parity, identically (same BALD, and once item 0 is labelled
    # item 1's label is known); item 2: the passes split by half, with a little less BALD, but its label tells
    # something item 0's does not; item 3: every pass agrees (no BALD)
    parity, half = [[0.99, 0.01], [0.01, 0.99]], [[0.9, 0.1], [0.1, 0.9]]
    samples = np.array([[parity[t % 2], parity[t % 2], half[t // 2], [0.8, 0.2]] for t in range(4)])
    assert query("bald", 2, samples=samples) == {0, 1}
    assert query("batchbald", 2, samples=samples) == {0, 2}
    assert batch_mutual_information(samples, [0, 2]) > 1.4 * batch_mutual_information(samples, [0, 1])


@pytest.mark.unit
def test_batchbald_greedily_maximises_the_batchs_mutual_information_exactly_while_configurations_are_few():
    from components.active.strategies import batchbald_select

    rng = np.random.default_rng(3)
    samples = rng.dirichlet(np.full(3, 0.4), size=(6, 12))  # T = 6 passes, 12 items, 3 classes
    greedy: list[int] = []
    for _ in range(4):  # 3 ** 4 = 81 configurations at most: every one enumerated
        rest = [c for c in range(12) if c not in greedy]
        greedy.append(max(rest, key=lambda c: batch_mutual_information(samples, greedy + [c])))
    assert batchbald_select(samples, 4, np.random.default_rng(0)).tolist() == greedy


@pytest.mark.unit
def test_batchbald_with_drawn_configurations_builds_a_batch_nearly_as_informative_as_enumeration():
    from components.active.strategies import batchbald_select

    rng = np.random.default_rng(4)
    samples = rng.dirichlet(np.full(10, 0.3), size=(8, 40))  # 10 classes: 10 ** 4 configurations for 4 picks
    exact = batchbald_select(samples, 4, np.random.default_rng(0), configurations=10**4)
    drawn = batchbald_select(samples, 4, np.random.default_rng(0), configurations=200)  # drawn from pick 3 on
    top_k_bald = np.argsort(-bald_scores(samples))[:4]
    assert len(set(drawn.tolist())) == 4
    mi = {
        name: batch_mutual_information(samples, list(b))
        for name, b in [("exact", exact), ("drawn", drawn), ("bald", top_k_bald)]
    }
    assert mi["drawn"] >= 0.97 * mi["exact"]
    assert mi["exact"] >= mi["bald"]


@pytest.mark.unit
def test_random_is_seeded_and_picks_distinct_pool_items():
    proba = np.full((50, 2), 0.5)
    first, again = query("random", 10, proba), query("random", 10, proba)
    assert first == again and len(first) == 10 and max(first) < 50


@pytest.mark.unit
def test_initial_set_is_stratified():
    y = np.repeat(np.arange(4), [50, 30, 10, 3])
    idx = initial_indices(y, 12, seed=0)
    assert len(idx) == len(set(idx)) == 12
    assert np.bincount(y[idx], minlength=4).tolist() == [3, 3, 3, 3]
    with pytest.raises(ValueError, match="one of each"):
        initial_indices(y, 3, seed=0)


@pytest.mark.unit
@pytest.mark.parametrize("strategy", ["random", "margin"])
def test_labelled_set_grows_and_pool_shrinks_by_n_instances_per_round(strategy):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
    start = initial_indices(y, 6, seed=0)
    pool = PoolLearner(LogisticRegression(), strategy, X, start, y[start], seed=0)
    for round_ in range(1, 4):
        chosen = pool.query(5)
        assert not set(chosen) & set(pool.labelled)
        pool.teach(chosen, y[chosen])
        assert len(pool.labelled) == 6 + 5 * round_
        assert len(pool.pool) == 120 - 6 - 5 * round_
        assert len(pool.learner.X_training) == len(pool.labelled)
    with pytest.raises(ValueError, match="already labelled"):
        pool.teach(chosen[:1], y[chosen[:1]])


@pytest.mark.unit
def test_simulate_takes_one_query_size_per_round():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    curve = simulate(LogisticRegression(), "margin", X, y, X, y, initial=6, query_size=[5, 5, 20], seed=0)
    assert [r.labels for r in curve.rounds] == [6, 11, 16, 36]
    assert curve.rounds[-1].accuracy > 0.75  # two balanced classes: chance is 0.5
    with pytest.raises(ValueError, match="rounds=2 but 3 query sizes"):
        simulate(LogisticRegression(), "margin", X, y, X, y, initial=6, query_size=[5, 5, 20], rounds=2)


@pytest.mark.unit
def test_label_efficiency_divides_labels_needed_by_randoms():
    import pandas as pd

    rows = []
    for strategy, accs in {"random": [0.5, 0.6, 0.7, 0.8], "bald": [0.5, 0.8, 0.85, 0.9]}.items():
        rows += [{"strategy": strategy, "seed": 0, "labels": 10 * (i + 1), "accuracy": a} for i, a in enumerate(accs)]
    table = label_efficiency(pd.DataFrame(rows), 0.8).set_index("strategy")
    assert table.loc["random", "labels_mean"] == 40 and table.loc["bald", "labels_mean"] == 20
    assert table.loc["bald", "ratio_mean"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def fashion():
    from components.data.formats.idx import load_mnist

    X, y, X_test, y_test = load_mnist("/usr/share/datasets/fashion-mnist")
    rng = np.random.default_rng(0)
    p, t = rng.choice(len(y), 800, replace=False), rng.choice(len(y_test), 500, replace=False)
    return X[p, ..., None], y[p], X_test[t, ..., None], y_test[t]


def fashion_run(fashion, strategy, warm_start=False):
    from components.projects.settings.image_classification import ModelSettings
    from components.settings import TrainSettings
    from components.training.estimators import TorchImageClassifier

    X, y, X_test, y_test = fashion
    est = TorchImageClassifier(
        model=ModelSettings(name="mc_dropout_cnn"),
        train=TrainSettings(epochs=20, batch_size=16, lr=3e-3, amp=False, patience=20),
        augmentation="none",
        mean=(0.286,),
        std=(0.353,),
        progress=False,
    )
    return simulate(
        est,
        strategy,
        X,
        y,
        X_test,
        y_test,
        initial=30,
        query_size=20,
        rounds=2,
        n_samples=5,
        seed=0,
        candidates=200,
        warm_start=warm_start,
    )


@pytest.mark.unit
def test_bald_loop_on_fashion_mnist_learns_and_the_same_seed_picks_the_same_items(fashion):
    first, again = fashion_run(fashion, "bald"), fashion_run(fashion, "bald")
    assert [r.labels for r in first.rounds] == [30, 50, 70]
    assert [r.queried for r in first.rounds] == [r.queried for r in again.rounds]
    assert first.rounds[-1].accuracy > 0.4  # ten classes: chance is 0.1


@pytest.mark.unit
def test_variation_ratios_loop_with_warm_start_learns(fashion):
    curve = fashion_run(fashion, "variation_ratios", warm_start=True)
    assert [r.labels for r in curve.rounds] == [30, 50, 70]
    assert curve.rounds[-1].accuracy > 0.4


@pytest.mark.unit
def test_gal_cnn_is_the_papers_network():
    import torch

    from components.models import build_model

    net = build_model("gal_cnn", num_classes=10)
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    dense = net.head[1]
    assert (dense.in_features, dense.out_features) == (32 * 11 * 11, 128)  # two valid 4x4 convs, one 2x2 pool
    assert [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)] == [0.25, 0.5]


@pytest.mark.unit
def test_the_weight_prior_shrinks_the_dense_weights_more_the_fewer_labels_there_are(fashion):
    from components.projects.settings.image_classification import ModelSettings
    from components.settings import TrainSettings
    from components.training.estimators import TorchImageClassifier

    X, y, X_test, y_test = fashion

    def dense_norm(n, prior):
        est = TorchImageClassifier(
            model=ModelSettings(name="mc_dropout_cnn", kwargs={"width": 8}),
            train=TrainSettings(epochs=10, batch_size=16, lr=3e-3, weight_decay=0.0, amp=False),
            val_fraction=0.0,
            augmentation="none",
            mean=(0.286,),
            std=(0.353,),
            progress=False,
            prior_l2=prior,
        ).fit(X[:n], y[:n])
        weight = est.module_.head[2].weight.detach()  # the hidden dense layer
        return float(weight.pow(2).sum()), est.score(X_test, y_test)

    plain_40, _ = dense_norm(40, 0.0)
    prior_40, _ = dense_norm(40, 3.5)
    plain_400, _ = dense_norm(400, 0.0)
    prior_400, acc_400 = dense_norm(400, 3.5)
    assert prior_40 < 0.5 * plain_40  # c / N is large at 40 labels
    assert prior_400 / plain_400 > prior_40 / plain_40  # and weighs less with ten times the labels
    assert acc_400 > 0.6  # ten classes: chance is 0.1; the prior does not stop it learning


@pytest.mark.unit
def test_estimator_without_a_validation_slice_trains_on_every_label_and_keeps_the_last_epoch(fashion):
    from components.projects.settings.image_classification import ModelSettings
    from components.settings import TrainSettings
    from components.training.estimators import TorchImageClassifier

    X, y, _, _ = fashion
    est = TorchImageClassifier(
        model=ModelSettings(name="mc_dropout_cnn"),
        train=TrainSettings(epochs=30, batch_size=10, lr=3e-3, amp=False),
        augmentation="none",
        val_fraction=0.0,
        progress=False,
        mean=(0.286,),
        std=(0.353,),
    )
    est.fit(X[:20], y[:20])
    history = est.fit_result_.history
    assert len(history) == 30 and est.fit_result_.best_epoch == 30 and not est.fit_result_.stopped_early
    assert all(np.isnan(e["val_loss"]) for e in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert (est.predict(X[:20]) == y[:20]).mean() > 0.8  # it saw all 20, not the 10 a 1-per-class holdout leaves


@pytest.mark.unit
def test_strategy_names_match_the_settings_schema():
    from typing import get_args

    from components.active.settings import BAYESIAN_STRATEGIES, StrategyName
    from components.active.strategies import BAYESIAN

    assert set(get_args(StrategyName)) == set(STRATEGIES)
    assert BAYESIAN_STRATEGIES == set(BAYESIAN)


# --- the pipeline stage and `dlfolio label`, on the face-mask sample with shrunk settings ---------------------

SMALL_AL = {"strategies": ["bald"], "initial_size": 10, "query_size": 5, "rounds": 1, "mc_samples": 3, "epochs": 2}


@pytest.mark.integration
def test_pipeline_logs_a_child_run_per_round_a_curve_and_the_efficiency_ratio(prefect_server, project_root):
    from mlflow.tracking import MlflowClient

    from flows.pipeline import project_pipeline

    root = project_root("face-mask", {"train": {"epochs": 1}, "active_learning": SMALL_AL})
    result = project_pipeline(project="face-mask", root=str(root))
    client = MlflowClient()
    run = client.get_run(result["run_id"])
    assert 0.0 < run.data.metrics["al_full_accuracy"] <= 1.0
    assert {"al_random_final_accuracy", "al_bald_final_accuracy"} <= set(run.data.metrics)
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    rounds = {c.info.run_name: c for c in children if c.info.run_name.startswith("al-")}
    assert set(rounds) == {"al-random-round-0", "al-random-round-1", "al-bald-round-0", "al-bald-round-1"}
    assert rounds["al-bald-round-1"].data.metrics["labels"] == 15
    assert "test_accuracy" in rounds["al-bald-round-1"].data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/active_learning_curves.png" in artifacts
    plots = root / "outputs" / "face-mask" / "plots"
    efficiency = (plots / "active_learning_efficiency.csv").read_text()
    assert "ratio" in efficiency and "bald" in efficiency


def fill_in(queries, truth=lambda item: item.split("/")[0]):
    import pandas as pd

    table = pd.read_csv(queries, dtype=str, keep_default_na=False)
    table["label"] = [truth(item) for item in table["item"]]
    return table


@pytest.mark.unit
def test_label_export_import_round_trip_continues_the_loop(project_root, run_cli, tmp_path):
    import json

    root = project_root("face-mask", {"active_learning": SMALL_AL})
    code, out, err = run_cli("label", "export", "face-mask", "--root", str(root))
    assert code == 0, err
    queries = root / "labels" / "face-mask" / "queries.csv"
    first = fill_in(queries)
    assert len(first) == 5 and set(first.columns) >= {"item", "predicted", "probability", "label"}
    state = json.loads((root / "labels" / "face-mask" / "state.json").read_text())
    assert len(state["labelled"]) == 10 and sorted(state["pending"]) == sorted(first["item"])
    assert not set(state["pending"]) & set(state["labelled"])

    first.to_csv(tmp_path / "answers.csv", index=False)
    code, out, err = run_cli("label", "import", "face-mask", str(tmp_path / "answers.csv"), "--root", str(root))
    assert code == 0, err
    assert "15 labelled" in out
    state = json.loads((root / "labels" / "face-mask" / "state.json").read_text())
    assert len(state["labelled"]) == 15
    assert all(state["labelled"][item] == item.split("/")[0] for item in first["item"])  # the person's labels
    assert [h["labels"] for h in state["history"]] == [10, 15]
    second = fill_in(queries)
    assert len(second) == 5 and not set(second["item"]) & set(state["labelled"])  # the next batch is new


@pytest.mark.unit
def test_bad_label_files_are_rejected_naming_the_rows(project_root, run_cli, tmp_path):
    import json

    root = project_root("face-mask", {"active_learning": SMALL_AL})
    assert run_cli("label", "export", "face-mask", "--root", str(root))[0] == 0
    state_file = root / "labels" / "face-mask" / "state.json"
    before = state_file.read_text()
    table = fill_in(root / "labels" / "face-mask" / "queries.csv")
    table.loc[1, "label"] = "with_hat"  # line 3: not a class
    table.loc[2, "item"] = "with_mask/not-queried.png"  # line 4: unknown item
    table.loc[3, "label"] = ""  # line 5: missing label
    table.loc[4, "item"] = table.loc[0, "item"]  # line 6: repeats line 2
    table.to_csv(tmp_path / "bad.csv", index=False)
    code, out, err = run_cli("label", "import", "face-mask", str(tmp_path / "bad.csv"), "--root", str(root))
    assert code == 2
    assert "line 3: label 'with_hat' is not a class" in err
    assert "line 4: unknown item 'with_mask/not-queried.png'" in err
    assert "line 5" in err and "has no label" in err
    assert "line 6" in err and "repeats line 2" in err
    assert state_file.read_text() == before  # nothing imported
    assert len(json.loads(before)["labelled"]) == 10


# --- train_on: selected: the registered model trains on the labels the strategy acquired ---------------------

BUDGET_AL = {
    "strategies": ["margin"],
    "initial_size": 10,
    "query_size": 10,
    "mc_samples": 3,
    "epochs": 2,
    "train_on": "selected",
    "label_budget": 30,
}


@pytest.mark.integration
def test_train_on_selected_registers_a_model_trained_on_exactly_the_selected_labels(prefect_server, project_root):
    import json

    from mlflow.tracking import MlflowClient

    from components.projects import get_project, settings_schemas
    from components.settings import load_project_settings
    from flows.pipeline import project_pipeline

    root = project_root("face-mask", {"train": {"epochs": 4}, "active_learning": BUDGET_AL})
    result = project_pipeline(project="face-mask", root=str(root))
    assert result["model_version"] is not None  # registered
    client = MlflowClient()
    run = client.get_run(result["run_id"])
    metrics, params = run.data.metrics, run.data.params

    record = json.loads((root / "outputs" / "face-mask" / "files" / "selected_labels.json").read_text())
    assert record["strategy"] == "margin" and record["label_budget"] == 30
    assert len(record["indices"]) == len(set(record["indices"])) == 30
    settings = load_project_settings(root / "params.yaml", "face-mask", settings_schemas())
    data = get_project("face-mask").prepare(settings)
    assert record["items"] == [data.paths_train[i] for i in record["indices"]]  # training-split items, by name
    assert params["train.train"] == "30"  # the registered model's training split is the selection, not the 400-odd
    assert metrics["al_training_items"] == len(data.y_train) > 100
    # the registered model is the one scored as "selected"; the all-labels and random models sit beside it
    assert metrics["al_selected_test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert {"al_all_labels_test_accuracy", "al_random_at_budget_test_accuracy"} <= set(metrics)
    # 30 labels against the whole training split, same recipe: the one with every label does better
    assert metrics["al_all_labels_test_accuracy"] > metrics["al_selected_test_accuracy"] - 0.02
    assert client.get_model_version("face-mask", result["model_version"]).run_id == run.info.run_id
    # the loop ran to the budget: 10 initial, then two rounds of 10
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    margin_rounds = sorted(c.data.metrics["labels"] for c in children if c.info.run_name.startswith("al-margin-"))
    assert margin_rounds == [10, 20, 30]


@pytest.mark.unit
def test_label_budget_is_checked_against_the_initial_set_and_the_pool():
    from components.active.settings import ActiveLearningSettings

    with pytest.raises(ValueError, match="needs a label_budget"):
        ActiveLearningSettings(train_on="selected")
    with pytest.raises(ValueError, match="below initial_size"):
        ActiveLearningSettings(train_on="selected", label_budget=10, initial_size=20)
    with pytest.raises(ValueError, match="more than the pool holds"):
        ActiveLearningSettings(train_on="selected", label_budget=300, pool_size=200)
    ok = ActiveLearningSettings(train_on="selected", label_budget=55, initial_size=20, query_size=10)
    assert ok.budget_schedule() == [10, 10, 10, 5] and ok.selecting_strategy == "bald"
    assert ActiveLearningSettings(label_budget=20, initial_size=20, train_strategy="margin").budget_schedule() == []


def sklearn_version() -> tuple[int, int]:
    import sklearn

    return tuple(int(part) for part in sklearn.__version__.split(".")[:2])


@pytest.mark.unit
def test_learner_teaches_through_modals_own_teach_and_still_refuses_non_finite_inputs():
    from modAL.models import ActiveLearner
    from sklearn.linear_model import LogisticRegression

    from components.active.loop import Learner

    # the one method overridden is the one modAL's teach calls first; query and teach are modAL's
    assert "_add_training_data" in vars(ActiveLearner.__mro__[1]) and Learner.teach is ActiveLearner.teach
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    import warnings

    modal_own = ActiveLearner(LogisticRegression(), make_strategy("margin"), X_training=X[:4], y_training=y[:4])
    if sklearn_version() < (1, 8):  # modAL's own check: deprecated in 1.6, a TypeError from 1.8 on
        with pytest.warns(FutureWarning, match="force_all_finite"):
            modal_own.teach(X[4:6], y[4:6])
    learner = Learner(LogisticRegression(), make_strategy("margin"), X_training=X[:4], y_training=y[:4])
    picked, _ = learner.query(X[4:], n_instances=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ours passes the keyword the installed scikit-learn knows: no warning
        learner.teach(X[4:][picked], y[4:][picked])
    assert len(learner.X_training) == len(learner.y_training) == 9
    learner.teach(X[20:], y[20:])
    assert learner.score(X, y) > 0.9  # refitted on the 49 labels: one feature separates the classes
    with pytest.raises(ValueError, match="(?i)nan|infinity"):
        learner.teach(np.array([[np.nan, 0.0]]), np.array([1]))
    assert len(learner.X_training) == 49  # the refused item was not added


@pytest.mark.unit
def test_the_image_folder_store_moves_labelled_files_into_class_folders_or_refuses_the_whole_batch(tmp_path):
    from PIL import Image

    from components.active.dataset import ImageFolderLabels, LabelWriteError

    data, pool = tmp_path / "data", tmp_path / "pool"
    for path in [data / "cat" / "a.png", data / "dog" / "b.png", pool / "new1.png", pool / "b.png", pool / "new2.png"]:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(path)
    store = ImageFolderLabels(data, ("cat", "dog"), pool)
    assert store.pool_items() == ["unlabelled/b.png", "unlabelled/new1.png", "unlabelled/new2.png"]
    assert store.load(store.pool_items(), 2).shape == (3, 2, 2, 3)

    clash = {"unlabelled/new1.png": "dog", "unlabelled/b.png": "dog", "unlabelled/new2.png": "dog"}
    with pytest.raises(LabelWriteError, match=r"line 3: 'unlabelled/b.png' -> dog/b.png: a file of that name is in"):
        store.plan(clash, {"unlabelled/new1.png": 2, "unlabelled/b.png": 3, "unlabelled/new2.png": 4})
    assert sorted(p.name for p in pool.iterdir()) == ["b.png", "new1.png", "new2.png"]  # nothing moved

    answers = {"unlabelled/new1.png": "dog", "cat/a.png": "dog", "dog/b.png": "dog"}  # new, a correction, as is
    moves = store.plan(answers, {item: line for line, item in enumerate(answers, start=2)})
    written = store.write(moves)
    assert [store.item_of(p) for p in written] == ["dog/new1.png", "dog/a.png"]
    assert sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png")) == [
        "dog/a.png",
        "dog/b.png",
        "dog/new1.png",
    ]
    assert not (pool / "new1.png").exists()


@pytest.mark.unit
def test_a_transfer_models_rounds_train_the_head_only_and_the_registered_model_still_fine_tunes():
    from components.active.stage import round_estimator
    from components.projects import get_project, settings_schemas
    from components.settings import load_project_settings
    from tests.conftest import REPO

    section = {"strategies": ["margin"], "epochs": 2}
    settings = load_project_settings(
        REPO / "params.yaml", "mobilenetv2-transfer", settings_schemas(), {"active_learning": section}
    )
    project = get_project("mobilenetv2-transfer")
    rounds = round_estimator(project, settings, settings.active_learning)
    assert rounds.finetune.layers == 0 and rounds.train.epochs == 2 and rounds.val_fraction == 0.0
    assert project.estimator(settings).finetune.layers == settings.finetune.layers > 0  # the train stage's
