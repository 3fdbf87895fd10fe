"""Fixtures of the bot runtime tests: synthetic bars, a Parquet history store, real crash data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.backtest.synthetic import random_walk_bars
from trading_pipeline.history.layout import HistoryLayout, Series

START = datetime(2020, 1, 1, tzinfo=UTC)


def write_store(
    history_dir: Path, frames: Mapping[str, pl.DataFrame], interval: str = "1h"
) -> Path:
    """Write frames into the hive-partitioned history store layout (one file per month)."""
    layout = HistoryLayout(history_dir)
    for symbol, df in frames.items():
        keyed = df.with_columns(y=pl.col("open_time").dt.year(), m=pl.col("open_time").dt.month())
        for (y, m), part in keyed.group_by(["y", "m"]):
            path = layout.parquet_path(Series("spot", symbol, interval), int(y), int(m))  # type: ignore[call-overload]
            path.parent.mkdir(parents=True, exist_ok=True)
            part.drop("y", "m").sort("open_time").write_parquet(path)
    return history_dir


@pytest.fixture
def bars() -> pl.DataFrame:
    """2,000 hourly bars from 2020-01-01 (a seeded random walk)."""
    return random_walk_bars(2000, seed=3, vol=0.005, start=START)


@pytest.fixture
def store_factory(tmp_path: Path) -> Callable[[Mapping[str, pl.DataFrame]], Path]:
    """Write frames into ``tmp_path/data/history`` and return the data dir."""

    def make(frames: Mapping[str, pl.DataFrame]) -> Path:
        write_store(tmp_path / "data" / "history", frames)
        return tmp_path / "data"

    return make


@pytest.fixture(scope="session")
def luna_frames(real_data: Path) -> dict[str, pl.DataFrame]:
    """Real hourly Binance spot BTC/USDT and ETH/USDT (freqtrade files), 2022-03-01 → 2022-06-01."""
    from trading_pipeline.market.candles import read_candle_file

    folder = real_data / "Roshan7869-algotrading" / "freqtrade_binance_spot_1h"
    if not folder.is_dir():
        pytest.skip(f"absent: {folder}")
    out = {}
    for symbol, base in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH")):
        df = read_candle_file(folder / f"{base}_USDT-1h.feather")
        out[symbol] = df.filter(
            pl.col("open_time").is_between(
                datetime(2022, 3, 1, tzinfo=UTC), datetime(2022, 6, 1, tzinfo=UTC)
            )
        )
    return out
