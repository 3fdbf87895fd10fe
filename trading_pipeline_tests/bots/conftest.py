"""Fixtures of the bot runtime tests: seeded bars and real crash data (the store writer is
``store_factory`` in the top-level conftest)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline_tests.fakes.bars import make_bars

START = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def bars() -> pl.DataFrame:
    """2,000 hourly bars from 2020-01-01 (a seeded random walk)."""
    return make_bars(2000, seed=3, vol=0.005, start=START)


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
