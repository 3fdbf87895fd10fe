"""The market state: causal, window-local, and the same at a bar whether computed for the whole
history or only for the latest bar."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from trading_pipeline.errors import UserInputError
from trading_pipeline.selector.state import (
    STATE_WARMUP_BARS,
    feature_names,
    latest_state,
    state_frame,
)
from trading_pipeline_tests.selector.helpers import SERIES, market


@pytest.fixture(scope="module")
def bars() -> dict[str, pl.DataFrame]:
    return market(n_bars=1600, seed=11)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_latest_state_equals_the_frame_row_at_every_probed_bar(
    bars: dict[str, pl.DataFrame],
) -> None:
    frame = state_frame(bars, interval="1h")
    assert frame.columns == ["open_time", *feature_names(list(SERIES))]
    assert latest_state(dict(reversed(bars.items())), interval="1h") == latest_state(
        bars, interval="1h"
    )
    for cut in (STATE_WARMUP_BARS, 700, 1234, 1600):
        state = latest_state({k: v.head(cut) for k, v in bars.items()}, interval="1h")
        row = frame.row(cut - 1, named=True)
        assert set(state) == set(row) - {"open_time"}
        diff = [k for k in state if not _same(state[k], row[k])]
        assert diff == [], f"bar {cut}: {diff[:3]}"
    # after the warm-up every feature is defined
    full = latest_state(bars, interval="1h")
    assert all(math.isfinite(v) for v in full.values())
    assert full[f"{SERIES[0]}.regime_bull"] in (0.0, 1.0)
    assert 0.0 <= full["x.breadth_up"] <= 1.0 and -1.0 <= full["x.corr_mean"] <= 1.0


def test_a_row_reads_no_later_bar(bars: dict[str, pl.DataFrame]) -> None:
    t = 1000
    frame = state_frame(bars, interval="1h")
    shocked = {
        k: v.with_columns(
            pl.when(pl.int_range(pl.len()) > t).then(pl.col(c) * 3.0).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close", "volume")
        )
        for k, v in bars.items()
    }
    after = state_frame(shocked, interval="1h")
    assert after.head(t + 1).equals(frame.head(t + 1))
    assert after.row(t + 1) != frame.row(t + 1)


def test_latest_state_reads_only_the_trailing_warmup_bars(bars: dict[str, pl.DataFrame]) -> None:
    """Bars older than STATE_WARMUP_BARS cannot change the state now."""
    base = latest_state(bars, interval="1h")
    cut = bars[SERIES[0]].height - STATE_WARMUP_BARS
    old_changed = {
        k: v.with_columns(
            pl.when(pl.int_range(pl.len()) < cut)
            .then(pl.col("close") * 0.5)
            .otherwise(pl.col("close"))
            .alias("close")
        )
        for k, v in bars.items()
    }
    assert latest_state(old_changed, interval="1h") == base
    # and the newest bar does change it
    newest = {
        k: v.with_columns(
            pl.when(pl.int_range(pl.len()) == v.height - 1)
            .then(pl.col("close") * 1.05)
            .otherwise(pl.col("close"))
            .alias("close")
        )
        for k, v in bars.items()
    }
    assert latest_state(newest, interval="1h")[f"{SERIES[0]}.ret_24"] > base[f"{SERIES[0]}.ret_24"]


def test_short_history_gives_nan_not_garbage(bars: dict[str, pl.DataFrame]) -> None:
    state = latest_state({k: v.head(100) for k, v in bars.items()}, interval="1h")
    assert math.isfinite(state[f"{SERIES[0]}.ret_24"])
    assert math.isnan(state[f"{SERIES[0]}.ret_480"])
    assert math.isnan(state[f"{SERIES[0]}.regime_bull"])


def test_single_series_has_no_cross_asset_features(bars: dict[str, pl.DataFrame]) -> None:
    one = {SERIES[0]: bars[SERIES[0]]}
    state = latest_state(one, interval="1h")
    assert not any(k.startswith("x.") for k in state)
    assert list(state) == feature_names([SERIES[0]])


def test_fear_greed_is_optional_and_causal(bars: dict[str, pl.DataFrame]) -> None:
    start = bars[SERIES[0]]["open_time"][0]
    days = pl.datetime_range(start, start + pl.duration(days=80), "1d", eager=True)
    fng = pl.DataFrame(
        {
            "published_at": days,
            "value": np.arange(days.len()) % 100,
            "classification": ["x"] * days.len(),
        }
    ).with_columns(pl.col("published_at").cast(pl.Datetime("us", "UTC")))
    frame = state_frame(bars, interval="1h", fear_greed=fng)
    assert "x.fear_greed" in frame.columns
    # the bar opening at 00:00 of day d still sees day d-1's value
    midnight = frame.filter(pl.col("open_time") == start + pl.duration(days=10))
    assert midnight.item(0, "x.fear_greed") == 9
    head = {k: v.head(1000) for k, v in bars.items()}
    state = latest_state(head, interval="1h", fear_greed=fng)
    assert state["x.fear_greed"] == frame.item(999, "x.fear_greed")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b, "unknown interval"),
        (lambda b: {k: v.drop("volume") for k, v in b.items()}, "lack columns"),
        (lambda b: {k: v.head(0) for k, v in b.items()}, "no bars"),
        (lambda b: {}, "no series"),
    ],
)
def test_bad_input_is_a_user_error(bars: dict[str, pl.DataFrame], mutate, message) -> None:  # type: ignore[no-untyped-def]
    interval = "7x" if message == "unknown interval" else "1h"
    with pytest.raises(UserInputError, match=message):
        latest_state(mutate(bars), interval=interval)
