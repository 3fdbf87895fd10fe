"""``market.bars.load_bars``: a candle file or the store, inclusive days, the interval inferred."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.backtest.synthetic import random_walk_bars
from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import Series
from trading_pipeline.market.bars import load_bars
from trading_pipeline_tests.fakes.store import write_store

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def bars() -> pl.DataFrame:
    return random_walk_bars(24 * 10, seed=1, start=START)  # 10 days of hours


def test_a_file_is_cut_to_inclusive_days_and_its_interval_inferred(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "btc.parquet"
    bars.write_parquet(path)
    got, interval = load_bars(
        symbol=None, interval=None, start=date(2024, 1, 2), end=date(2024, 1, 3),
        market="spot", history_dir=tmp_path / "none", data=path,
    )  # fmt: skip
    assert interval == "1h" and got.height == 48
    assert got["open_time"][0] == datetime(2024, 1, 2, tzinfo=UTC)
    assert got["open_time"][-1] == datetime(2024, 1, 3, 23, tzinfo=UTC)


def test_the_store_gives_the_same_days(bars: pl.DataFrame, tmp_path: Path) -> None:
    history = tmp_path / "history"
    write_store(history, Series("spot", "BTCUSDT", "1h"), bars)
    got, interval = load_bars(
        symbol="btcusdt", interval="1h", start=date(2024, 1, 2), end=date(2024, 1, 3),
        market="spot", history_dir=history, data=None,
    )  # fmt: skip
    assert interval == "1h" and got.height == 48


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbol": "BTCUSDT", "interval": None}, "give --data FILE, or --symbol and --interval"),
        ({"symbol": "BTCUSDT", "interval": "7m"}, "unknown interval '7m'"),
        ({"symbol": "BTCUSDT", "interval": "1h", "market": "options"}, "unknown market"),
        ({"symbol": "ETHUSDT", "interval": "1h"}, "ETHUSDT"),
    ],
)
def test_bad_requests_are_user_errors(
    bars: pl.DataFrame, tmp_path: Path, kwargs: dict[str, str | None], message: str
) -> None:
    history = tmp_path / "history"
    write_store(history, Series("spot", "BTCUSDT", "1h"), bars)
    args: dict[str, object] = {"start": None, "end": None, "market": "spot", "data": None}
    with pytest.raises(UserInputError, match=message):
        load_bars(history_dir=history, **{**args, **kwargs})  # type: ignore[arg-type]
