"""The candle loader: Parquet store, freqtrade feather/json, and its refusals."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.history.convert import write_parquet
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.market.candles import CandleError, load_store, read_candle_file, validate
from trading_pipeline.market.schema import KLINE_SCHEMA, conform
from trading_pipeline_tests.fakes.store import write_store

T0 = datetime(2024, 1, 30, tzinfo=UTC)


def klines(n: int, start: datetime = T0, seed: int = 2) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = [start + timedelta(hours=i) for i in range(n)]
    return conform(
        pl.DataFrame(
            {
                "open_time": opens,
                "open": close,
                "high": close * 1.01,
                "low": close * 0.99,
                "close": close,
                "volume": np.ones(n),
                "close_time": [t + timedelta(hours=1, milliseconds=-1) for t in opens],
                "trades": np.arange(n),
            }
        )
    )


def freqtrade_frame(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        pl.col("open_time").cast(pl.Datetime("ns", "UTC")).alias("date"),
        "open",
        "high",
        "low",
        "close",
        "volume",
    )


def store(tmp_path: Path, df: pl.DataFrame, series: Series) -> HistoryLayout:
    write_store(tmp_path / "history", series, df)
    return HistoryLayout(tmp_path / "history")


def test_feather_and_json_match_and_lack_columns(tmp_path: Path) -> None:
    df = klines(30)
    feather = tmp_path / "BTC_USDT-1h.feather"
    freqtrade_frame(df).reverse().write_ipc(feather)
    js = tmp_path / "BTC_USDT-1h.json"
    rows = [[int(r[0].timestamp() * 1000), *r[1:]] for r in freqtrade_frame(df).rows()]
    js.write_text(json.dumps(rows))
    a, b = read_candle_file(feather), read_candle_file(js)
    assert a.schema == pl.Schema(KLINE_SCHEMA)
    assert a.equals(b)
    assert a["open_time"].is_sorted() and a["open_time"][0] == T0
    assert a["close"].to_list() == df["close"].to_list()
    assert a["trades"].null_count() == 30 and a["close_time"].null_count() == 30


def test_parquet_file_and_hive_folder(tmp_path: Path) -> None:
    df = klines(72)  # spans January and February
    layout = store(tmp_path, df, Series("spot", "BTCUSDT", "1h"))
    one = layout.parquet_path(Series("spot", "BTCUSDT", "1h"), 2024, 1)
    assert read_candle_file(one).height == 48
    folder = read_candle_file(layout.series_dir(Series("spot", "BTCUSDT", "1h")))
    assert folder.equals(df)


def test_load_store_filters_dates_and_drops_duplicates(tmp_path: Path) -> None:
    df = klines(96)
    series = Series("spot", "ETHUSDT", "1h")
    layout = store(tmp_path, df, series)
    # an overlapping extra file (e.g. daily and monthly data both present) must not double bars
    write_parquet(
        df.slice(10, 5), layout.series_dir(series) / "year=2024" / "month=01" / "extra.parquet"
    )
    got = load_store(layout.root, market="spot", symbol="ETHUSDT", interval="1h")
    assert got.equals(df)
    part = load_store(
        layout.root,
        market="spot",
        symbol="ETHUSDT",
        interval="1h",
        start=date(2024, 1, 31),
        end=date(2024, 2, 1),
    )
    assert part["open_time"].min() == datetime(2024, 1, 31, tzinfo=UTC)
    assert part["open_time"].max() == datetime(2024, 2, 1, 23, tzinfo=UTC)
    assert part.height == 48


def test_load_store_refusals(tmp_path: Path) -> None:
    with pytest.raises(CandleError, match="unknown interval"):
        load_store(tmp_path, market="spot", symbol="BTCUSDT", interval="1M")
    with pytest.raises(CandleError, match="no history"):
        load_store(tmp_path, market="spot", symbol="BTCUSDT", interval="1h")


def test_read_refusals(tmp_path: Path) -> None:
    with pytest.raises(CandleError, match="no such file"):
        read_candle_file(tmp_path / "missing.feather")
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n")
    with pytest.raises(CandleError, match="unsupported"):
        read_candle_file(csv)
    broken = tmp_path / "BTC_USDT-1h.json"
    broken.write_text("{nope")
    with pytest.raises(CandleError, match="cannot read"):
        read_candle_file(broken)
    empty = tmp_path / "E.json"
    empty.write_text("[]")
    with pytest.raises(CandleError):
        read_candle_file(empty)


@pytest.mark.parametrize("bad", [float("nan"), None, 0.0, -1.0])
def test_validate_refuses_bad_prices(bad: float | None) -> None:
    df = klines(5).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(bad).otherwise(pl.col("low")).alias("low")
    )
    with pytest.raises(CandleError, match=str(T0 + timedelta(hours=3))[:10]):
        validate(df)
    assert validate(klines(5)).height == 5
    with pytest.raises(CandleError, match="no candles"):
        validate(klines(0))


def test_real_freqtrade_feather(real_data: Path) -> None:
    df = read_candle_file(
        real_data / "wuTribe-freqtrade/freqtrade_binance_spot_1h/BNB_USDT-1h.feather"
    )
    assert df.height == 42_410
    assert df["open_time"][0] == datetime(2020, 1, 1, tzinfo=UTC)
    assert df["open_time"][-1] == datetime(2024, 11, 3, 9, tzinfo=UTC)
