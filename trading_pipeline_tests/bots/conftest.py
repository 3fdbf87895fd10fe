"""Fixtures of the bot runtime tests: seeded bars and real crash data (the store writer is
``store_factory`` in the top-level conftest)."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture
def permissive_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The runner validates every assignment against the fleet: tests that run a bot on
    buy_and_hold, bot2's families on hourly bars or bot4 on Binance × Coinbase install a fleet
    allowing it (the packaged fleet otherwise)."""
    from importlib.resources import files

    from trading_pipeline.bots.fleet_file import load_fleet
    from trading_pipeline.bots.spec import use_fleet

    text = files("trading_pipeline.bots").joinpath("fleet.toml").read_text()
    text = text.replace("families = [", 'families = ["buy_and_hold", ')
    text = text.replace('interval = "5m"', 'interval = "1h"')
    text = text.replace(  # bot4 on the real overlap: Binance (not Binance US) × Coinbase
        'symbols = ["binanceus:BTCUSDT", "coinbase:BTCUSD"]',
        'symbols = ["binance:BTCUSDT", "coinbase:BTCUSD"]',
    ).replace('venues = ["binanceus", "coinbase"]', 'venues = ["binance", "coinbase"]')
    path = tmp_path_factory.mktemp("fleet") / "fleet.toml"
    path.write_text(text)
    use_fleet(load_fleet(path))
    yield
    use_fleet(None)
