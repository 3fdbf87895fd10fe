"""The Vision writer: a candle frame becomes monthly zips + .CHECKSUM that the fetcher's own
extract and CSV reader turn back into the same candles."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from trading_pipeline.history.checksum import parse_checksum, sha256_file
from trading_pipeline.history.convert import extract_zip, read_kline_csv
from trading_pipeline.history.layout import Series
from trading_pipeline.history.vision import parse_key
from trading_pipeline.history.vision_writer import write_vision_months
from trading_pipeline_tests.fakes.bars import make_bars

SERIES = Series("spot", "BTCUSDT", "1h")
COLUMNS = ["open_time", "close_time", "open", "high", "low", "close", "volume"]


def test_a_frame_round_trips_through_monthly_zips(tmp_path: Path) -> None:
    start = datetime(2024, 1, 31, tzinfo=UTC)
    bars = make_bars(48, start=start, seed=3, price=42_000.0, decimals=8)  # Jan 31 → Feb 1
    zips = write_vision_months(tmp_path, SERIES, bars)
    assert [z.relative_to(tmp_path).as_posix() for z in zips] == [
        "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip",
        "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02.zip",
    ]
    back = []
    for z in zips:
        checksum = z.with_name(z.name + ".CHECKSUM").read_bytes()
        assert parse_checksum(checksum, z.name) == sha256_file(z)
        assert parse_key(z.relative_to(tmp_path).as_posix()).series == SERIES
        back.append(read_kline_csv(extract_zip(z, tmp_path / "csv" / f"{z.stem}.csv")))
    assert pl.concat(back).select(COLUMNS).equals(bars.select(COLUMNS))


def test_equal_candles_give_equal_bytes(tmp_path: Path) -> None:
    bars = make_bars(30, start=datetime(2025, 3, 1, tzinfo=UTC), seed=1)
    first = write_vision_months(tmp_path / "a", SERIES, bars)[0].read_bytes()
    second = write_vision_months(tmp_path / "b", SERIES, bars)[0].read_bytes()
    assert first == second and len(first) > 0
