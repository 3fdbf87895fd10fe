"""Month features with warm-up equal whole-history features; cross-asset features are causal
and right on cases with a known answer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.market.features import (
    cross_asset_features,
    month_bounds,
    month_features,
)
from trading_pipeline.market.indicators import compute_features, warmup_bars
from trading_pipeline.regimes.synthetic import synthetic_bars

ROSHAN = "Roshan7869-algotrading/freqtrade_binance_spot_1h"


def _assert_equal_features(part: pl.DataFrame, whole: pl.DataFrame) -> None:
    assert part.columns == whole.columns
    assert part.get_column("open_time").to_list() == whole.get_column("open_time").to_list()
    for col in part.columns[1:]:
        a = part.get_column(col).fill_null(np.nan).to_numpy()
        b = whole.get_column(col).fill_null(np.nan).to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), col
        if np.isnan(b).all():
            continue
        scale = np.nanmax(np.abs(b)) + 1e-12
        assert np.nanmax(np.abs(a - b)) / scale < 1e-6, col


@pytest.fixture(scope="module")
def btc(real_data: Path) -> pl.DataFrame:
    return read_candle_file(real_data / ROSHAN / "BTC_USDT-1h.feather")


@pytest.fixture(scope="module")
def btc_features(btc: pl.DataFrame) -> pl.DataFrame:
    return compute_features(btc)


@pytest.mark.slow  # every feature over years of real BTC
@pytest.mark.parametrize(("year", "month"), [(2018, 9), (2021, 3), (2024, 2), (2026, 5)])
def test_month_with_warmup_equals_whole_history_real(
    btc: pl.DataFrame, btc_features: pl.DataFrame, year: int, month: int
) -> None:
    whole = btc_features
    start, end = month_bounds(year, month)
    expected = whole.filter((pl.col("open_time") >= start) & (pl.col("open_time") < end))
    part = month_features(btc, year, month)
    assert part.height == expected.height > 0
    _assert_equal_features(part, expected)


def test_month_with_warmup_equals_whole_history_synthetic() -> None:
    bars = synthetic_bars()  # 2020-01-01 .. 2021-09, hourly
    whole = compute_features(bars)
    for year, month in [(2020, 1), (2020, 7), (2021, 8)]:
        start, end = month_bounds(year, month)
        part = month_features(bars, year, month)
        expected = whole.filter((pl.col("open_time") >= start) & (pl.col("open_time") < end))
        assert part.height == expected.height > 0
        assert part["open_time"].min() >= start and part["open_time"].max() < end
        _assert_equal_features(part, expected)


def test_month_features_only_read_bars_before_month_end() -> None:
    bars = synthetic_bars()
    start, end = month_bounds(2020, 9)
    with_future = month_features(bars, 2020, 9)
    without = month_features(bars.filter(pl.col("open_time") < end), 2020, 9)
    assert with_future.equals(without)
    # The warm-up really is used: cutting it off changes the first rows.
    short = month_features(bars.filter(pl.col("open_time") >= start), 2020, 9)
    assert not short.head(50).equals(with_future.head(50))
    assert warmup_bars() > 50


def test_month_bounds_december() -> None:
    assert month_bounds(2023, 12) == (
        datetime(2023, 12, 1, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=UTC),
    )


# ---------------------------------------------------------------- cross-asset


def _universe(n: int = 3000) -> dict[str, pl.DataFrame]:
    out = {}
    for i, sym in enumerate(("BTCUSDT", "ETHUSDT", "BNBUSDT")):
        out[sym] = synthetic_bars(
            (("bull", n // 3), ("bear", n // 3), ("sideways", n - 2 * (n // 3))), seed=10 + i
        ).select("open_time", "close")
    return out


def test_cross_asset_no_lookahead() -> None:
    uni = _universe()
    full = cross_asset_features(uni, window=48, ma=100)
    for cut in (120, 777, 1999, 2999):
        part = cross_asset_features({s: df.head(cut) for s, df in uni.items()}, window=48, ma=100)
        assert part.equals(full.head(cut)), cut


def test_cross_asset_values() -> None:
    uni = _universe()
    w = 48
    out = cross_asset_features(uni, window=w, ma=100)
    # Rolling correlation equals numpy's on the last window.
    r = {s: np.diff(np.log(df["close"].to_numpy())) for s, df in uni.items()}
    expected = np.corrcoef(r["BTCUSDT"][-w:], r["ETHUSDT"][-w:])[0, 1]
    assert out["corr_BTCUSDT_ETHUSDT"][-1] == pytest.approx(expected, abs=1e-9)
    # Breadth by hand at the last bar.
    above = [df["close"][-1] > df["close"].tail(100).mean() for df in uni.values()]
    assert out["breadth_above_ma"][-1] == pytest.approx(sum(above) / 3)
    up = [df["close"][-1] > df["close"][-1 - w] for df in uni.values()]
    assert out["breadth_up"][-1] == pytest.approx(sum(up) / 3)
    moves = {s: abs(np.log(df["close"][-1] / df["close"][-1 - w])) for s, df in uni.items()}
    assert out["btc_return_share"][-1] == pytest.approx(moves["BTCUSDT"] / sum(moves.values()))
    for col in ("breadth_above_ma", "breadth_up", "btc_return_share", "btc_r2"):
        s = out[col].drop_nulls()
        assert s.len() > 0 and s.min() >= 0 and s.max() <= 1, col  # type: ignore[operator]
    # Warm-up rows are null, not zero.
    assert out["btc_r2"].head(w).null_count() == w


def test_cross_asset_identical_moves() -> None:
    btc = synthetic_bars((("bull", 600),), seed=1).select("open_time", "close")
    uni = {
        "BTCUSDT": btc,
        "ETHUSDT": btc.with_columns(pl.col("close") * 0.05),
        "BNBUSDT": btc.with_columns(pl.col("close") * 0.01),
    }
    out = cross_asset_features(uni, window=24, ma=50).drop_nulls()
    assert out.height > 0
    assert np.allclose(out["corr_ETHUSDT_BNBUSDT"].to_numpy(), 1.0)
    assert np.allclose(out["btc_r2"].to_numpy(), 1.0)
    assert np.allclose(out["btc_return_share"].to_numpy(), 1 / 3)


def test_cross_asset_aligns_on_common_bars() -> None:
    uni = _universe(600)
    uni["ETHUSDT"] = uni["ETHUSDT"].filter(pl.int_range(pl.len()) != 300)  # a missing hour
    out = cross_asset_features(uni, window=24, ma=50)
    assert out.height == 599
    with pytest.raises(ValueError, match="two symbols"):
        cross_asset_features({"BTCUSDT": uni["BTCUSDT"]})


def test_cross_asset_real_universe(real_data: Path) -> None:
    uni = {
        "BTCUSDT": read_candle_file(real_data / ROSHAN / "BTC_USDT-1h.feather"),
        "ETHUSDT": read_candle_file(real_data / ROSHAN / "ETH_USDT-1h.feather"),
    }
    out = cross_asset_features(uni).drop_nulls()
    # BTC and ETH move together: their weekly hourly-return correlation is mostly high.
    assert out["corr_BTCUSDT_ETHUSDT"].median() > 0.6  # type: ignore[operator]
