"""Pool-based active learning on modAL's ActiveLearner, around any scikit-learn classifier.

    pool = PoolLearner(TorchImageClassifier(...), "bald", X, initial_indices(y, 20, seed=0), seed=0)
    for _ in range(rounds):
        chosen = pool.query(10)          # indices into X, never asked before
        pool.teach(chosen, oracle[chosen])  # a human (`dlfolio label`) or the known labels (simulate)

Each ``teach`` refits the estimator on the whole labelled set: from scratch by default, or from the last
round's weights when the estimator has ``warm_start=True``. ``simulate`` runs the loop with the known labels
as the oracle and records test accuracy per round: the learning curve a strategy is judged by.
Needs numpy, scikit-learn, pandas and modAL only (and whatever the estimator needs).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from modAL.models import ActiveLearner
from sklearn.base import clone
from sklearn.utils import check_X_y

from components.active.strategies import make_strategy


def initial_indices(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A stratified starting set: ``size`` indices with the classes as equal as possible, every class at least once."""
    y = np.asarray(y)
    classes = np.unique(y)
    if size < len(classes):
        raise ValueError(f"initial labelled set of {size} cannot hold one of each of the {len(classes)} classes")
    if size > len(y):
        raise ValueError(f"initial labelled set of {size} is larger than the pool ({len(y)} items)")
    rng = np.random.default_rng(seed)
    shuffled = {c: rng.permutation(np.flatnonzero(y == c)) for c in classes}
    quota = {c: min(size // len(classes), len(shuffled[c])) for c in classes}
    chosen = [shuffled[c][: quota[c]] for c in classes]
    left = np.concatenate([shuffled[c][quota[c] :] for c in classes])
    chosen.append(rng.choice(left, size=size - sum(quota.values()), replace=False))
    return np.sort(np.concatenate(chosen))


# scikit-learn 1.6 renamed check_X_y's ``force_all_finite`` to ``ensure_all_finite``; 1.8 removed the old name.
_FINITE_KEYWORD = (
    "ensure_all_finite" if "ensure_all_finite" in inspect.signature(check_X_y).parameters else "force_all_finite"
)


class Learner(ActiveLearner):
    """modAL's ActiveLearner, with the one method that checks new labels written for every scikit-learn.

    modAL 0.4.1 (its last release) calls ``check_X_y(..., force_all_finite=...)`` in ``_add_training_data``, the
    first step of ``teach``; scikit-learn 1.8 (the GPU image) no longer has that keyword and raises TypeError.
    The same check runs here under the keyword the installed scikit-learn knows; ``query`` and ``teach``
    (add, then refit on every label) are modAL's own.
    """

    def _add_training_data(self, X, y) -> None:
        check_X_y(
            X,
            y,
            accept_sparse=True,
            ensure_2d=False,
            allow_nd=True,
            multi_output=True,
            dtype=None,
            **{_FINITE_KEYWORD: self.force_all_finite},
        )
        if self.X_training is None:
            self.X_training, self.y_training = X, y
        else:
            self.X_training = np.concatenate([self.X_training, X])
            self.y_training = np.concatenate([self.y_training, y])


class PoolLearner:
    """The labelled set and the unlabelled pool over one array ``X``, with a modAL learner fitted to the labels."""

    def __init__(
        self,
        estimator,
        strategy: str,
        X: np.ndarray,
        labelled: np.ndarray,
        y_labelled: np.ndarray,
        *,
        n_samples: int = 20,
        seed: int = 0,
        candidates: int | None = None,
    ):
        self.X = X
        self.strategy = strategy
        self.labelled = np.asarray(labelled, dtype=int)
        self.y_labelled = np.asarray(y_labelled)
        if len(np.unique(self.labelled)) != len(self.labelled):
            raise ValueError("the labelled indices hold duplicates")
        self.candidates = candidates
        self._rng = np.random.default_rng(seed + 1)
        self.learner = Learner(
            estimator=estimator,
            query_strategy=make_strategy(strategy, n_samples=n_samples, seed=seed),
            X_training=X[self.labelled],
            y_training=self.y_labelled,
        )

    @property
    def pool(self) -> np.ndarray:
        """Indices of X not labelled yet."""
        return np.setdiff1d(np.arange(len(self.X)), self.labelled)

    @property
    def estimator(self):
        return self.learner.estimator

    def query(self, n_instances: int) -> np.ndarray:
        """Indices into X of the next ``n_instances`` items to label, chosen by the strategy from the pool.

        With ``candidates`` the strategy scores a random subset of the pool of that size, as Gal et al. (2017)
        do to keep MC-dropout scoring affordable on large pools.
        """
        pool = self.pool
        if n_instances > len(pool):
            raise ValueError(f"asked for {n_instances} items but only {len(pool)} are left in the pool")
        if self.candidates and self.candidates < len(pool):
            pool = np.sort(self._rng.choice(pool, size=max(self.candidates, n_instances), replace=False))
        picked, _ = self.learner.query(self.X[pool], n_instances=n_instances)
        return pool[np.asarray(picked, dtype=int)]

    def teach(self, indices: np.ndarray, labels: np.ndarray) -> None:
        """Add labelled items and refit on every label so far."""
        indices, labels = np.asarray(indices, dtype=int), np.asarray(labels)
        already = np.intersect1d(indices, self.labelled)
        if len(already) or len(np.unique(indices)) != len(indices):
            raise ValueError(f"items already labelled or repeated: {sorted(set(already.tolist()))}")
        self.learner.teach(self.X[indices], labels)  # modAL: add to the known data, refit on all of it
        self.labelled = np.concatenate([self.labelled, indices])
        self.y_labelled = np.concatenate([self.y_labelled, labels])


@dataclass
class RoundResult:
    round: int
    labels: int
    accuracy: float
    seconds: float
    queried: list[int] = field(default_factory=list)


@dataclass
class Curve:
    """One strategy's learning curve: test accuracy after each round."""

    strategy: str
    seed: int
    rounds: list[RoundResult] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        rows = [{k: v for k, v in asdict(r).items() if k != "queried"} for r in self.rounds]
        return pd.DataFrame(rows).assign(strategy=self.strategy, seed=self.seed)


def simulate(
    estimator,
    strategy: str,
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    initial: int,
    query_size: int | Sequence[int],
    rounds: int | None = None,
    n_samples: int = 20,
    warm_start: bool = False,
    seed: int = 0,
    candidates: int | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
) -> Curve:
    """Run the loop with the known labels ``y`` as the oracle; accuracy on (X_test, y_test) after every round.

    ``estimator`` is cloned, so every strategy starts from the same untrained model and the same seed.
    ``query_size`` is the labels asked for per round, for ``rounds`` rounds, or a sequence of one size per
    round (larger rounds late in a long run keep the cost of retraining from scratch in check).
    """
    sizes = [query_size] * rounds if isinstance(query_size, int) else list(query_size)
    if rounds is not None and rounds != len(sizes):
        raise ValueError(f"rounds={rounds} but {len(sizes)} query sizes were given")
    estimator = clone(estimator)
    if "warm_start" in estimator.get_params():
        estimator.set_params(warm_start=warm_start)
    started = time.perf_counter()
    labelled = initial_indices(y, initial, seed)
    pool = PoolLearner(
        estimator, strategy, X, labelled, y[labelled], n_samples=n_samples, seed=seed, candidates=candidates
    )
    curve = Curve(strategy, seed)

    def record(round_: int, queried: np.ndarray) -> None:
        result = RoundResult(
            round_,
            len(pool.labelled),
            float(pool.learner.score(X_test, y_test)),
            time.perf_counter() - started,
            queried.tolist(),
        )
        curve.rounds.append(result)
        if on_round is not None:
            on_round(result)

    record(0, labelled)
    for round_, size in enumerate(sizes, start=1):
        started = time.perf_counter()
        chosen = pool.query(size)
        pool.teach(chosen, y[chosen])
        record(round_, chosen)
    return curve


def labels_to_reach(curve: pd.DataFrame, target: float) -> float:
    """Fewest labels at which the curve's accuracy reaches ``target``; NaN if it never does."""
    hit = curve.loc[curve["accuracy"] >= target, "labels"]
    return float(hit.min()) if len(hit) else float("nan")


def label_efficiency(curves: pd.DataFrame, target: float, baseline: str = "random") -> pd.DataFrame:
    """Per strategy: labels needed to reach ``target`` accuracy (mean over seeds), and the ratio to the baseline's.

    ``curves`` holds rows of (strategy, seed, labels, accuracy). A run that never reaches the target counts as
    needing more than its last label count; the table then says so (``reached`` < ``runs``) and the ratio is a
    bound, not a measurement.
    """
    rows = []
    for (strategy, seed), run in curves.groupby(["strategy", "seed"], sort=False):
        needed = labels_to_reach(run, target)
        rows.append(
            {
                "strategy": strategy,
                "seed": seed,
                "needed": needed,
                "reached": not np.isnan(needed),
                "budget": float(run["labels"].max()),
            }
        )
    per_run = pd.DataFrame(rows)
    base = per_run[per_run["strategy"] == baseline].set_index("seed")
    out = []
    for strategy, runs in per_run.groupby("strategy", sort=False):
        ratios, bounds = [], []
        for r in runs.itertuples():
            if r.seed not in base.index or not r.reached:
                continue
            if base.loc[r.seed, "reached"]:
                ratios.append(r.needed / base.loc[r.seed, "needed"])
            else:  # random needs more than its whole budget, so the ratio is below needed / budget
                bounds.append(r.needed / base.loc[r.seed, "budget"])
        out.append(
            {
                "strategy": strategy,
                "target": target,
                "runs": len(runs),
                "reached": int(runs["reached"].sum()),
                "labels_mean": runs["needed"].mean(),
                "labels_std": runs["needed"].std(ddof=0),
                "ratio_mean": float(np.mean(ratios)) if ratios else float("nan"),
                "ratio_std": float(np.std(ratios)) if ratios else float("nan"),
                "ratio_below": float(np.max(bounds)) if bounds else float("nan"),
            }
        )
    return pd.DataFrame(out)
