"""A universe's series key names its coins' stored series, and reads their bars back joined."""

from __future__ import annotations

from pathlib import Path

import pytest

from trading_pipeline.discovery.universe_bars import load_universe, series_of_key, universe_series
from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import Series
from trading_pipeline.strategies.universe import coins_of
from trading_pipeline_tests.fakes.bars import START_2021, make_bars
from trading_pipeline_tests.fakes.store import write_store

BTC = Series("spot", "BTCUSDT", "1h")
ETH = Series("spot", "ETHUSDT", "1h")


def test_the_key_names_the_series_and_back() -> None:
    key, coins = universe_series(["BTCUSDT", "ETHUSDT"], market="spot", interval="1h")
    assert key == "universe-BTC+ETH-1h"
    assert coins == {"BTC": BTC, "ETH": ETH}
    assert series_of_key(key) == coins


@pytest.mark.parametrize(
    ("symbols", "market"),
    [(["BTCUSDT"], "spot"), (["BTCUSDT", "ETHBTC"], "spot"), (["BTCUSDT", "ETHUSDT"], "um")],
)
def test_what_is_not_a_universe_is_one_clear_error(symbols: list[str], market: str) -> None:
    with pytest.raises(UserInputError):
        universe_series(symbols, market=market, interval="1h")


@pytest.mark.parametrize("key", ["spot-BTCUSDT-1h", "universe-BTC-1h", "universe-BTC+-1h"])
def test_a_key_that_is_no_universe_is_refused(key: str) -> None:
    with pytest.raises(UserInputError):
        series_of_key(key)


def test_the_stored_coins_are_joined_on_open_time(tmp_path: Path) -> None:
    history = tmp_path / "history"
    write_store(history, BTC, make_bars(300, seed=1, start=START_2021))
    write_store(history, ETH, make_bars(200, seed=2, start=START_2021))
    frame = load_universe(history, "universe-BTC+ETH-1h")
    assert coins_of(frame) == ["BTC", "ETH"]
    assert frame.height == 200  # the hours both coins have
    with pytest.raises(UserInputError, match="spot-BNBUSDT-1h"):
        load_universe(history, "universe-BTC+BNB-1h")
