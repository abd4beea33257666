"""The shared splits: sizes as asked, disjoint and complete, stratified or grouped, one seed one split."""

from __future__ import annotations

import numpy as np
import pytest

from components.data.splits import grouped_split, random_split, stratified_split

pytestmark = pytest.mark.unit


def assert_partition(split: dict[str, np.ndarray], count: int) -> None:
    together = np.concatenate(list(split.values()))
    assert len(together) == count and set(together.tolist()) == set(range(count))  # disjoint and complete


@pytest.mark.parametrize("count", [3, 10, 101, 1000])
def test_random_split_cuts_fractions_rounded_with_at_least_one_row_and_the_rest_is_train(count):
    split = random_split(count, {"test": 0.1, "calibration": 0.05, "val": 0.2}, seed=0)
    assert list(split) == ["test", "calibration", "val", "train"]
    if count >= 10:
        assert [len(split[k]) for k in ("test", "calibration", "val")] == [
            max(1, round(f * count)) for f in (0.1, 0.05, 0.2)
        ]
    assert_partition(split, count)
    assert all(np.array_equal(idx, np.sort(idx)) for idx in split.values())


def test_an_integer_size_is_a_row_count_and_parts_past_the_end_are_empty():
    split = random_split(10, {"val": 4, "test": 0}, seed=3)
    assert (len(split["val"]), len(split["test"]), len(split["train"])) == (4, 0, 6)
    tiny = random_split(2, {"test": 0.5, "val": 0.5, "extra": 0.5}, seed=3)
    assert (len(tiny["test"]), len(tiny["val"]), len(tiny["extra"]), len(tiny["train"])) == (1, 1, 0, 0)


def test_random_split_is_one_permutation_cut_in_order_so_the_projects_splits_stay_as_they_were():
    order = np.random.default_rng(42).permutation(50)
    split = random_split(50, {"test": 0.2, "val": 0.1}, seed=42, sort=False)
    assert np.array_equal(np.concatenate([split["test"], split["val"], split["train"]]), order)


def test_a_generator_seed_draws_one_split_after_another():
    rng = np.random.default_rng(7)
    first, second = (random_split(20, {"test": 0.25}, rng) for _ in range(2))
    again = np.random.default_rng(7)
    assert np.array_equal(random_split(20, {"test": 0.25}, again)["test"], first["test"])
    assert np.array_equal(random_split(20, {"test": 0.25}, again)["test"], second["test"])
    assert not np.array_equal(first["test"], second["test"])


@pytest.mark.parametrize(
    "split",
    [
        lambda seed: random_split(200, {"test": 0.1, "val": 0.1}, seed),
        lambda seed: stratified_split(np.arange(200) % 3, {"test": 0.1, "val": 0.1}, seed),
        lambda seed: grouped_split(np.arange(200) // 7, {"test": 0.1, "val": 0.1}, seed),
    ],
    ids=["random", "stratified", "grouped"],
)
def test_same_seed_same_split_and_another_seed_another(split):
    a, b, c = split(5), split(5), split(6)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("seed", range(5))
def test_stratified_split_keeps_every_class_within_one_example_of_its_fraction(seed):
    rng = np.random.default_rng(100 + seed)
    labels = np.repeat(np.array(["cat", "dog", "emu", "yak"]), [7, 40, 123, 3])[rng.permutation(173)]
    fractions = {"test": 0.15, "val": 0.2}
    split = stratified_split(labels, fractions, seed)
    assert_partition(split, len(labels))
    for c in np.unique(labels):
        in_class = (labels == c).sum()
        for name, fraction in fractions.items():
            assert abs((labels[split[name]] == c).sum() - fraction * in_class) <= 1, (c, name)
        assert (labels[split["train"]] == c).sum() >= in_class - sum(
            max(1, round(f * in_class)) for f in fractions.values()
        )


@pytest.mark.parametrize("seed", range(5))
def test_grouped_split_puts_no_group_in_two_parts(seed):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"p{i:02d}" for i in range(30)], rng.integers(1, 40, 30))
    split = grouped_split(groups, {"test": 0.1, "val": 0.1}, seed)
    assert_partition(split, len(groups))
    members = {name: set(groups[idx]) for name, idx in split.items()}
    assert not members["test"] & members["val"] and not (members["test"] | members["val"]) & members["train"]
    assert all(members.values())  # every part holds at least one group
    for name in ("test", "val"):  # as close to its fraction as whole groups allow
        assert abs(len(split[name]) - 0.1 * len(groups)) <= max(np.unique(groups, return_counts=True)[1])


def test_grouped_split_refuses_fewer_groups_than_parts_and_names_them():
    with pytest.raises(ValueError, match="at least 3 subjects.*found 2: a, b"):
        grouped_split(np.array(["a", "a", "b"]), {"test": 0.3, "val": 0.3}, 0)


def test_the_calibration_hold_out_moves_a_stratified_share_of_training_rows_with_their_paths():
    from dataclasses import dataclass

    from components.data.splits import hold_out_calibration

    @dataclass
    class Splits:
        X_train: np.ndarray
        y_train: np.ndarray
        paths_train: list
        X_cal: np.ndarray | None = None
        y_cal: np.ndarray | None = None
        paths_cal: list | None = None

    y = np.repeat([0, 1, 2], [50, 30, 20])
    data = Splits(np.arange(100) * 10, y, [f"img{i}.png" for i in range(100)])
    held = hold_out_calibration(data, 0.1, seed=0, stratify=True)
    assert np.bincount(held.y_cal).tolist() == [5, 3, 2] and len(held.y_train) == 90
    assert not set(held.X_cal) & set(held.X_train) and set(held.X_cal) | set(held.X_train) == set(data.X_train)
    assert held.paths_cal == [f"img{x // 10}.png" for x in held.X_cal]  # each path moved with its row
    assert hold_out_calibration(data, 0.1, seed=0, stratify=True).X_cal.tolist() == held.X_cal.tolist()  # seeded
    assert len(hold_out_calibration(data, 0.25, seed=1, stratify=False).y_cal) == 25
