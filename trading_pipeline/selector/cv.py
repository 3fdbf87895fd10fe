"""Purged, embargoed cross-validation for rows whose labels look into the future.

Each selector row is a decision at ``t`` whose label is known only at ``label_end`` (the end
of the window the strategies are scored over). A plain K-fold would train on rows whose label
window overlaps the test period, i.e. on the test period's own outcomes. Following López de
Prado (*Advances in Financial Machine Learning*, ch. 7):

- **purge**: a training row is dropped when its label window ``[t, label_end]`` overlaps the
  test window ``[first test t, last test label_end]``;
- **embargo**: the ``embargo`` rows right after each test block are also dropped from training,
  since features computed on them still carry the test period's information.

A final :func:`holdout_split` keeps the end of the history for the one comparison nothing
was tuned on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Split = tuple[np.ndarray, np.ndarray]


def purged_splits(
    decision_times: Sequence[Any] | np.ndarray,
    label_ends: Sequence[Any] | np.ndarray,
    n_splits: int,
    embargo: int = 0,
    *,
    forward_only: bool = False,
) -> list[Split]:
    """``n_splits`` contiguous test blocks with purged, embargoed training indices.

    :param decision_times: one sortable time per row, non-decreasing (datetimes or numbers).
    :param label_ends: when each row's label window ends; ``label_ends[i] >= decision_times[i]``.
    :param n_splits: number of test blocks (at least 2); they partition the rows in order.
    :param embargo: rows after each test block removed from its training set.
    :param forward_only: train only on rows before the test block (walk-forward) instead of
        on both sides of it; the first block then has no split, so ``n_splits - 1`` come back.
    :return: ``[(train_idx, test_idx), ...]`` as sorted int64 arrays; a split whose training
        set would be empty is an error, not silently returned.
    """
    t, end = _validated(decision_times, label_ends)
    n = len(t)
    if n_splits < 2:
        raise ValueError("n_splits must be at least 2")
    if n < n_splits:
        raise ValueError(f"{n} rows are too few for {n_splits} splits")
    if embargo < 0:
        raise ValueError("embargo must be >= 0")
    rows = np.arange(n, dtype=np.int64)
    bounds = np.linspace(0, n, n_splits + 1).astype(np.int64)
    out: list[Split] = []
    for k in range(n_splits):
        if forward_only and k == 0:
            continue  # nothing precedes the first block
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        test = rows[lo:hi]
        keep = ~_overlaps(t, end, t[lo], end[lo:hi].max())
        keep[lo:hi] = False
        keep[hi : hi + embargo] = False
        if forward_only:
            keep[hi:] = False
        train = rows[keep]
        if train.size == 0:
            raise ValueError(
                f"split {k} has no training rows left after purging and an embargo of {embargo}"
            )
        out.append((train, test))
    return out


def holdout_split(
    n: int,
    fraction: float,
    *,
    decision_times: Sequence[Any] | np.ndarray | None = None,
    label_ends: Sequence[Any] | np.ndarray | None = None,
) -> Split:
    """The last ``ceil(n * fraction)`` rows as a held-out period, the rest for development.

    With ``decision_times`` and ``label_ends`` given, development rows whose label window
    reaches into the held-out period are purged as well.

    :return: ``(development_idx, holdout_idx)`` as int64 arrays.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be strictly between 0 and 1")
    size = math.ceil(n * fraction)
    if size < 1 or size >= n:
        raise ValueError(f"a held-out fraction of {fraction} leaves no rows on one side of {n}")
    rows = np.arange(n, dtype=np.int64)
    cut = n - size
    dev, hold = rows[:cut], rows[cut:]
    if (decision_times is None) != (label_ends is None):
        raise ValueError("give both decision_times and label_ends, or neither")
    if decision_times is not None and label_ends is not None:
        t, end = _validated(decision_times, label_ends)
        if len(t) != n:
            raise ValueError(f"{len(t)} decision times for {n} rows")
        dev = dev[~_overlaps(t[:cut], end[:cut], t[cut], end[cut:].max())]
        if dev.size == 0:
            raise ValueError("every development row's label reaches into the held-out period")
    return dev, hold


def _overlaps(t: np.ndarray, end: np.ndarray, start: Any, stop: Any) -> np.ndarray:
    """Rows whose closed window ``[t, end]`` intersects ``[start, stop]``."""
    return np.asarray((t <= stop) & (end >= start), dtype=bool)


def _validated(
    decision_times: Sequence[Any] | np.ndarray, label_ends: Sequence[Any] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(decision_times)
    end = np.asarray(label_ends)
    if t.ndim != 1 or t.shape != end.shape:
        raise ValueError("decision_times and label_ends must be 1-D and of equal length")
    if len(t) and bool(np.any(t[1:] < t[:-1])):
        raise ValueError("decision_times must be sorted ascending")
    if bool(np.any(end < t)):
        raise ValueError("every label_end must be at or after its decision time")
    return t, end
