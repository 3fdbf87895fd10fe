"""The causal confirmation rule and the label frame."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from trading_pipeline.regimes.base import CODES, UNKNOWN_CODE, bars_per_day, confirm, labels_frame

B, R, S = CODES["bull"], CODES["bear"], CODES["sideways"]


def test_confirm_needs_n_consecutive_bars() -> None:
    raw = np.array([B, B, R, B, R, R, R, B, R, R, R, R])
    got = confirm(raw, 3)
    assert got.tolist() == [B, B, B, B, B, B, R, R, R, R, R, R]


def test_confirm_leaves_unknown_at_once_and_is_causal() -> None:
    raw = np.array([UNKNOWN_CODE] * 3 + [S, S, B, B, B, B, S])
    got = confirm(raw, 2)
    assert got.tolist()[:4] == [UNKNOWN_CODE] * 3 + [S]
    for cut in range(1, raw.size + 1):  # a prefix never depends on what follows
        assert confirm(raw[:cut], 2).tolist() == got[:cut].tolist()


def test_confirm_runs_last_at_least_n_bars() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 6, 5000)
    got = confirm(raw, 5)
    change = np.flatnonzero(np.diff(got)) + 1
    runs = np.diff(np.concatenate([[0], change, [got.size]]))
    assert (runs[1:-1] >= 5).all()


def test_labels_frame_columns() -> None:
    t = pl.Series("open_time", [datetime(2024, 1, 1, tzinfo=UTC)] * 3)
    df = labels_frame(t, np.array([CODES["bull_highvol"], CODES["bear"], UNKNOWN_CODE]))
    assert df.columns == ["open_time", "regime", "trend", "vol"]
    assert df.rows() == [
        (t[0], "bull_highvol", "bull", "high"),
        (t[0], "bear", "bear", "normal"),
        (t[0], "unknown", "unknown", "unknown"),
    ]


def test_bars_per_day() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    hourly = pl.DataFrame({"open_time": [start + timedelta(hours=i) for i in range(50)]})
    daily = pl.DataFrame({"open_time": [start + timedelta(days=i) for i in range(5)]})
    assert bars_per_day(hourly) == 24
    assert bars_per_day(daily) == 1
