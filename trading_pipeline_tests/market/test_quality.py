"""The quality module on small generated frames with planted problems."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trading_pipeline.market.quality import (
    count_gaps,
    find_duplicates,
    find_gaps,
    find_off_grid,
    find_ohlc_violations,
    quality_report,
)
from trading_pipeline.market.schema import KLINE_SCHEMA, conform

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def bars(
    n: int, *, step: timedelta = timedelta(hours=1), start: datetime = T0, micro: bool = False
) -> pl.DataFrame:
    """``n`` clean bars (seeded random walk) with Binance-style close times."""
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    opens = [start + i * step for i in range(n)]
    unit = timedelta(microseconds=1) if micro else timedelta(milliseconds=1)
    return conform(
        pl.DataFrame(
            {
                "open_time": opens,
                "open": open_,
                "high": np.maximum(open_, close) * 1.001,
                "low": np.minimum(open_, close) * 0.999,
                "close": close,
                "volume": np.full(n, 2.0),
                "close_time": [t + step - unit for t in opens],
                "quote_volume": close * 2,
                "trades": np.arange(n),
            }
        )
    )


def test_clean_frame_is_clean() -> None:
    for micro in (False, True):
        rep = quality_report(bars(48, micro=micro), "1h")
        assert rep.clean and rep.rows == 48 and rep.gaps == 0
        assert rep.first_open_time == T0


def test_gaps_are_found_with_their_span() -> None:
    df = bars(30)
    holed = df.filter(~pl.col("open_time").is_in([T0 + timedelta(hours=h) for h in (5, 6, 7, 20)]))
    gaps = find_gaps(holed, "1h")
    assert gaps.rows() == [
        (T0 + timedelta(hours=5), T0 + timedelta(hours=8), 3),
        (T0 + timedelta(hours=20), T0 + timedelta(hours=21), 1),
    ]
    assert count_gaps(holed, "1h") == (2, 4)
    assert count_gaps(holed.head(1), "1h") == (0, 0)
    # order of input rows does not matter
    assert find_gaps(holed.reverse(), "1h").equals(gaps)


def test_duplicates_are_not_gaps() -> None:
    df = bars(10)
    doubled = pl.concat([df, df.slice(3, 2)])
    assert find_gaps(doubled, "1h").height == 0
    dups = find_duplicates(doubled)
    assert dups.height == 4 and dups["open_time"].n_unique() == 2
    assert quality_report(doubled, "1h").duplicates == 2


def test_off_grid_and_bad_close_times() -> None:
    df = bars(6).with_row_index()
    shifted = df.with_columns(
        pl.when(pl.col("index") == 1)
        .then(pl.col("open_time") + pl.duration(minutes=28))
        .otherwise(pl.col("open_time"))
        .alias("open_time"),
        pl.when(pl.col("index") == 3)
        .then(pl.col("open_time") + pl.duration(minutes=20))  # truncated bar
        .when(pl.col("index") == 4)
        .then(pl.col("open_time") - pl.duration(minutes=13))  # close before open
        .otherwise(pl.col("close_time"))
        .alias("close_time"),
    ).drop("index")
    found = find_off_grid(shifted, "1h")
    assert found.select("off_grid", "bad_close", "close_before_open").rows() == [
        (True, True, False),  # open moved, close not: also an inconsistent close
        (False, True, False),
        (False, True, True),
    ]
    rep = quality_report(shifted, "1h")
    assert (rep.off_grid, rep.bad_close, rep.close_before_open) == (1, 3, 1)
    assert not rep.clean


def test_null_close_time_is_not_flagged() -> None:
    df = bars(5).with_columns(pl.lit(None, dtype=KLINE_SCHEMA["close_time"]).alias("close_time"))
    assert find_off_grid(df, "1h").height == 0


@pytest.mark.parametrize(
    ("interval", "start", "step", "ok"),
    [
        ("1w", datetime(2024, 1, 1, tzinfo=UTC), timedelta(weeks=1), True),  # a Monday
        ("1w", datetime(2024, 1, 4, tzinfo=UTC), timedelta(weeks=1), False),  # a Thursday
        ("1d", datetime(2024, 1, 1, tzinfo=UTC), timedelta(days=1), True),
        ("1d", datetime(2024, 1, 1, 8, tzinfo=UTC), timedelta(days=1), False),
        ("1m", datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC), timedelta(minutes=1), False),
    ],
)
def test_grid_by_interval(interval: str, start: datetime, step: timedelta, ok: bool) -> None:
    df = bars(4, step=step, start=start)
    assert (find_off_grid(df, interval).height == 0) is ok


def test_monthly_interval_is_calendar_based() -> None:
    opens = [datetime(2024, m, 1, tzinfo=UTC) for m in (1, 2, 3, 5)]
    closes = [
        datetime(2024, m + 1, 1, tzinfo=UTC) - timedelta(milliseconds=1) for m in (1, 2, 3, 5)
    ]
    df = conform(
        pl.DataFrame(
            {
                "open_time": opens,
                "close_time": closes,
                "open": 1.0,
                "high": 1.0,
                "low": 1.0,
                "close": 1.0,
            }
        )
    )
    assert find_off_grid(df, "1mo").height == 0
    gaps = find_gaps(df, "1mo")
    assert gaps.rows() == [(datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC), 1)]


def test_ohlc_violations() -> None:
    df = bars(6).with_row_index()
    bad = df.with_columns(
        pl.when(pl.col("index") == 0)
        .then(pl.col("close") * 1.1)
        .otherwise(pl.col("high"))
        .alias("high"),
        pl.when(pl.col("index") == 2)
        .then(pl.col("high") * 2)
        .otherwise(pl.col("low"))
        .alias("low"),
        pl.when(pl.col("index") == 4).then(-1.0).otherwise(pl.col("volume")).alias("volume"),
        pl.when(pl.col("index") == 5).then(float("nan")).otherwise(pl.col("open")).alias("open"),
    ).drop("index")
    bad = bad.with_columns(
        pl.when(pl.col("open_time") == T0)
        .then(pl.col("close") * 1.2)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    found = find_ohlc_violations(bad)
    flags = found.select(
        "high_below_body", "low_above_body", "low_above_high", "negative_volume", "bad_price"
    ).rows()
    assert found["open_time"].to_list() == [T0 + timedelta(hours=h) for h in (0, 2, 4, 5)]
    assert flags[0][0] and flags[1][1] and flags[1][2] and flags[2][3] and flags[3][4]
    assert quality_report(bad, "1h").ohlc_violations == 4


def test_report_is_json_serialisable_with_samples() -> None:
    df = bars(40)
    holed = pl.concat([df.filter(pl.col("open_time") != T0 + timedelta(hours=10)), df.head(1)])
    rep = quality_report(holed, "1h", sample_rows=2)
    doc = json.loads(json.dumps(rep.to_dict()))
    assert doc["gaps"] == 1 and doc["missing_bars"] == 1 and doc["duplicates"] == 1
    assert doc["samples"]["gaps"][0]["start"].startswith("2024-01-01T10:00")
    assert len(doc["samples"]["duplicates"]) == 2
    assert doc["first_open_time"] == T0.isoformat()


def test_empty_frame_report() -> None:
    rep = quality_report(pl.DataFrame(schema=KLINE_SCHEMA), "1h")
    assert rep.rows == 0 and rep.clean and rep.first_open_time is None
