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
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from components.capabilities import Capability
from components.settings import Section

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
]


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

    def requirement(self) -> tuple[Capability, str]:
        return Capability.ACTIVE_LEARNING, (
            "the stage simulates the query strategies on the project's estimator(settings), a scikit-learn classifier"
        )
