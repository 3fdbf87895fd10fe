"""Walk-forward folds: tune on a train window, score on the test window that follows it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fold:
    """Half-open bar index ranges ``[train_start, train_stop)`` and ``[test_start, test_stop)``."""

    index: int
    train_start: int
    train_stop: int
    test_start: int
    test_stop: int


def walk_forward(
    n_bars: int,
    *,
    folds: int,
    train_bars: int | None = None,
    anchored: bool = False,
    embargo: int = 0,
) -> list[Fold]:
    """``folds`` consecutive test windows covering the end of the data, each after its train window.

    Rolling (default): every train window has ``train_bars`` bars (default: as long as the
    first test window's prefix allows). Anchored: train windows all start at bar 0.
    ``embargo`` bars are skipped between train and test so indicator/label overlap cannot leak.
    The test windows never overlap, so their concatenation is one out-of-sample series.
    """
    if folds < 1:
        raise ValueError("folds must be at least 1")
    if embargo < 0:  # a negative embargo would train on the first bars of each test window
        raise ValueError(f"embargo must be at least 0 bars, got {embargo}")
    if n_bars < 2 * (folds + 1):
        raise ValueError(f"{n_bars} bars are too few for {folds} walk-forward folds")
    test_len = n_bars // (folds + 1)
    first_test = n_bars - folds * test_len
    train_len = train_bars if train_bars is not None else first_test - embargo
    if train_len < 2 or first_test - embargo - train_len < 0:
        raise ValueError(
            f"train window of {train_len} bars does not fit before the first test window"
        )
    out = []
    for i in range(folds):
        test_start = first_test + i * test_len
        test_stop = n_bars if i == folds - 1 else test_start + test_len
        train_stop = test_start - embargo
        train_start = 0 if anchored else max(0, train_stop - train_len)
        out.append(Fold(i, train_start, train_stop, test_start, test_stop))
    return out
