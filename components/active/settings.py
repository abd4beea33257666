"""The `active_learning` section of a project in params.yaml (absent: no active-learning stage).

active_learning:
  strategies: [bald, margin]   # compared against random, which always runs as the baseline
  initial_size: 20             # stratified starting labels
  query_size: 10               # labels asked for per round (n_instances)
  rounds: 5
  mc_samples: 20               # T MC-dropout passes for bald / power_bald / variation_ratios
  warm_start: false            # false: retrain from scratch each round
  candidates: null             # score a random subset of the pool this big (null: the whole pool)
  pool_size: null              # use a random subset of the training split as the pool (null: all of it)
  test_size: null              # score each round on a random subset of the test split (null: all of it)
  epochs: null                 # training epochs per round (null: the project's train.epochs)
  targets: [0.9, 0.95]         # label-efficiency targets, as fractions of the all-labels accuracy
  labels_dir: labels           # where `dlfolio label` keeps <project>/state.json and queries.csv
  unlabelled_dir: null         # images nobody has labelled yet (e.g. data/face-mask-unlabelled): the pool of
                               # `dlfolio label`, whose import moves each labelled file into <data_dir>/<class>/
                               # (null: the training split stands in for the pool and only corrections move)
  train_on: all                # all: the registered model trains on every label; selected: on the label_budget
                               # items train_strategy acquired (the all-labels and random-at-budget models beside it)
  label_budget: null           # labels the strategy acquires when train_on is selected (initial_size..pool)
  train_strategy: null         # the strategy whose picks train the model (null: the first of strategies)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from components.capabilities import Capability
from components.settings import Section, SettingsProblem

StrategyName = Literal[
    "random",
    "least_confident",
    "margin",
    "entropy",
    "bald",
    "power_bald",
    "variation_ratios",
    "max_entropy",
    "mc_margin",
    "power_mc_margin",
    "batchbald",
]


# The strategies that call the estimator's predict_proba_samples (MC dropout): components/active/strategies.py's
# BAYESIAN (that module carries no pydantic; tests/test_active_learning.py holds the two lists equal).
BAYESIAN_STRATEGIES = frozenset(
    {"bald", "power_bald", "variation_ratios", "max_entropy", "mc_margin", "power_mc_margin", "batchbald"}
)


class ActiveLearningSettings(Section):
    strategies: tuple[StrategyName, ...] = Field(
        ("bald", "margin"), min_length=1, description="strategies compared against random"
    )
    initial_size: int = Field(20, ge=2)
    query_size: int = Field(10, ge=1)
    rounds: int = Field(5, ge=1)
    mc_samples: int = Field(20, ge=2)
    warm_start: bool = False
    candidates: int | None = Field(None, ge=1)
    pool_size: int | None = Field(None, ge=2)
    test_size: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    targets: tuple[float, ...] = Field((0.9, 0.95), min_length=1)
    labels_dir: Path = Path("labels")
    unlabelled_dir: Path | None = None
    train_on: Literal["all", "selected"] = "all"
    label_budget: int | None = Field(None, ge=2)
    train_strategy: StrategyName | None = None

    @model_validator(mode="after")
    def _budget_fits(self) -> ActiveLearningSettings:
        if self.train_on == "selected" and self.label_budget is None:
            raise SettingsProblem(
                "train_on: selected needs a label_budget (the labels the strategy acquires)", ("label_budget",)
            )
        if self.label_budget is not None:
            if self.label_budget < self.initial_size:
                raise SettingsProblem(
                    f"{self.label_budget} is below initial_size ({self.initial_size}): the loop starts with that many",
                    ("label_budget",),
                )
            if self.pool_size is not None and self.label_budget > self.pool_size:
                raise SettingsProblem(
                    f"{self.label_budget} is more than the pool holds (pool_size {self.pool_size})", ("label_budget",)
                )
        return self

    @property
    def selecting_strategy(self) -> str:
        """The strategy whose acquired labels train the model with ``train_on: selected``."""
        return self.train_strategy or self.strategies[0]

    def budget_schedule(self) -> list[int]:
        """Query sizes from ``initial_size`` up to ``label_budget``: ``query_size`` a round, the last one smaller."""
        left = self.label_budget - self.initial_size
        return [self.query_size] * (left // self.query_size) + (
            [left % self.query_size] if left % self.query_size else []
        )

    def requirement(self) -> tuple[Capability, str]:
        return Capability.ACTIVE_LEARNING, (
            "the stage simulates the query strategies on the project's estimator(settings), a scikit-learn classifier"
        )

    def further_requirements(self) -> list[tuple[Capability, str]]:
        bayesian = sorted(BAYESIAN_STRATEGIES & {*self.strategies, self.train_strategy})
        if not bayesian:
            return []
        return [
            (
                Capability.MC_SAMPLING,
                f"{', '.join(bayesian)} score MC-dropout passes; margin, entropy and "
                "least_confident need only predict_proba",
            )
        ]
