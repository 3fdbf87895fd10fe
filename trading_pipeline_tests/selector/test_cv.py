"""Purged, embargoed cross-validation: no training label window touches a test window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_pipeline.selector.cv import holdout_split, purged_splits


def _rows(seed: int, n: int, max_horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Irregular decision times (hours) with label windows of random length."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(1, 4, size=n))
    return t, t + rng.integers(0, max_horizon + 1, size=n)


def _check_split(
    t: np.ndarray,
    end: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    embargo: int,
    forward_only: bool = False,
) -> None:
    assert np.intersect1d(train, test).size == 0
    assert np.all(np.diff(test) == 1), "a test block is contiguous"
    start, stop = t[test].min(), end[test].max()
    overlapping = (t[train] <= stop) & (end[train] >= start)
    assert not overlapping.any(), "a training label window overlaps the test window"
    after = np.arange(test.max() + 1, min(test.max() + 1 + embargo, len(t)))
    assert np.intersect1d(train, after).size == 0, "the embargo rows leaked into training"
    # and nothing more is dropped than purge, embargo (and, walk-forward, the future) require
    dropped = np.setdiff1d(np.arange(len(t)), np.concatenate([train, test]))
    needed = ((t <= stop) & (end >= start)) | np.isin(np.arange(len(t)), after)
    if forward_only:
        needed |= np.arange(len(t)) > test.max()
    assert needed[dropped].all(), "a row was dropped without reason"


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(30, 300),
    n_splits=st.integers(2, 6),
    embargo=st.integers(0, 5),
    max_horizon=st.integers(0, 12),
    forward_only=st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_purge_and_embargo_hold(
    seed: int, n: int, n_splits: int, embargo: int, max_horizon: int, forward_only: bool
) -> None:
    t, end = _rows(seed, n, max_horizon)
    try:
        splits = purged_splits(t, end, n_splits, embargo, forward_only=forward_only)
    except ValueError as exc:  # only legitimate when purging empties a training set
        assert "no training rows" in str(exc)
        return
    assert len(splits) == (n_splits - 1 if forward_only else n_splits)
    tests = np.concatenate([test for _, test in splits])
    # the test blocks tile the rows (walk-forward: all but the first block), in order
    assert np.array_equal(tests, np.arange(n - len(tests), n))
    assert forward_only or len(tests) == n
    for train, test in splits:
        _check_split(t, end, train, test, embargo, forward_only)
        if forward_only:
            assert train.max() < test.min()


def test_purge_removes_exactly_the_overlapping_rows() -> None:
    # 12 hourly decisions with 3-hour labels; block 2 of 3 is rows 4..7 (times 4..7, ends ≤ 10).
    t = np.arange(12)
    end = t + 3
    splits = purged_splits(t, end, 3, embargo=0)
    train, test = splits[1]
    assert test.tolist() == [4, 5, 6, 7]
    # rows 1..3 end at 4..6 (inside the test window) → purged; rows 8..10 start ≤ 10 → purged
    assert train.tolist() == [0, 11]
    train_e, _ = purged_splits(t, end, 3, embargo=2)[0]
    # block 1 = rows 0..3 (window 0..6): purge rows 4..6, embargo covers rows 4..5 anyway
    assert train_e.tolist() == [7, 8, 9, 10, 11]


def test_embargo_drops_rows_after_the_test_block_even_without_label_overlap() -> None:
    t = np.arange(20)
    train, test = purged_splits(t, t, 4, embargo=3)[1]  # zero-length labels: nothing to purge
    assert test.tolist() == [5, 6, 7, 8, 9]
    assert train.tolist() == [0, 1, 2, 3, 4, 13, 14, 15, 16, 17, 18, 19]


def test_datetimes_are_accepted() -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    t = np.array([base + timedelta(days=i) for i in range(30)], dtype=object)
    end = t + timedelta(days=2)
    as_int = np.arange(30)
    got = purged_splits(t, end, 3, embargo=1)
    same = purged_splits(as_int, as_int + 2, 3, embargo=1)  # the same rows as day numbers
    for (train, test), (train_i, test_i) in zip(got, same, strict=True):
        _check_split(as_int, as_int + 2, train, test, 1)
        assert np.array_equal(train, train_i) and np.array_equal(test, test_i)
        # two rows each side are purged (labels 2 days long); the embargo adds nothing here
        assert len(train) == 30 - len(test) - 2 * (test.min() > 0) - 2 * (test.max() < 29)


@pytest.mark.parametrize(
    ("t", "end", "message"),
    [
        ([0, 2, 1, 3], [0, 2, 1, 3], "sorted"),
        ([0, 1, 2, 3], [0, 0, 2, 3], "at or after"),
        ([0, 1, 2], [0, 1], "equal length"),
    ],
)
def test_bad_rows_are_refused(t: list[int], end: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        purged_splits(t, end, 2)


def test_labels_spanning_everything_leave_no_training_rows() -> None:
    t = np.arange(10)
    with pytest.raises(ValueError, match="no training rows"):
        purged_splits(t, np.full(10, 100), 2)


def test_holdout_is_the_end_and_purges_labels_reaching_into_it() -> None:
    dev, hold = holdout_split(10, 0.25)
    assert dev.tolist() == list(range(7)) and hold.tolist() == [7, 8, 9]
    t = np.arange(10)
    dev, hold = holdout_split(10, 0.25, decision_times=t, label_ends=t + 2)
    assert hold.tolist() == [7, 8, 9]
    assert dev.tolist() == [0, 1, 2, 3, 4]  # rows 5 and 6 are scored on held-out bars
    with pytest.raises(ValueError):
        holdout_split(10, 1.0)
    with pytest.raises(ValueError):
        holdout_split(3, 0.999)
