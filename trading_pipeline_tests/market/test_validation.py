"""The one candle validator: each kind of bad bar is refused with the bar named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.history.convert import build_month, read_kline_csv
from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.market.schema import conform
from trading_pipeline.market.validation import CandleError, validate_candles

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def bars(n: int = 48, step: timedelta = timedelta(hours=1)) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    return conform(
        pl.DataFrame(
            {
                "open_time": [T0 + i * step for i in range(n)],
                "open": open_,
                "high": np.maximum(open_, close) * 1.001,
                "low": np.minimum(open_, close) * 0.999,
                "close": close,
                "volume": rng.gamma(2.0, 5.0, n),
            }
        )
    )


def _set(df: pl.DataFrame, row: int, **values: float) -> pl.DataFrame:
    idx = pl.int_range(pl.len())
    return df.with_columns(
        [
            pl.when(idx == row).then(pl.lit(v)).otherwise(pl.col(k)).alias(k)
            for k, v in values.items()
        ]
    )


BAD = {
    "inf price": (lambda d: _set(d, 5, high=float("inf")), "high=inf"),
    "NaN close": (lambda d: _set(d, 6, close=float("nan")), "close=nan"),
    "high below low": (lambda d: _set(d, 7, high=1.0), "inconsistent"),
    "close above high": (lambda d: _set(d, 8, close=1e6), "inconsistent"),
    "negative volume": (lambda d: _set(d, 9, volume=-1.0), "volume -1.0"),
    "1e300 prices": (
        lambda d: _set(d, 10, open=1e300, high=1e300, low=1e300, close=1e300),
        "above 1e+12",
    ),
    "duplicate times": (lambda d: pl.concat([d, d.slice(11, 1)]), "occurs more than once"),
    "seconds read as ms": (
        lambda d: d.with_columns(
            (pl.col("open_time").dt.epoch("s") * 1000).cast(pl.Datetime("us", "UTC"))
        ),
        "wrong time unit",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_bar_is_refused_and_named(case: str) -> None:
    make, message = BAD[case]
    with pytest.raises(CandleError, match=r"bar|open_time") as err:
        validate_candles(make(bars()), source="f", interval="1h")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_good_bars_pass_and_gaps_are_not_refused() -> None:
    df = bars()
    gappy = df.filter(pl.int_range(pl.len()).is_in([3, 4, 5]).not_())
    assert validate_candles(gappy, interval="1h").height == df.height - 3


def test_spacing_strict_for_files_median_for_binance() -> None:
    df = bars()
    off = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 20)
        .then(pl.col("open_time") + timedelta(minutes=28))
        .otherwise(pl.col("open_time"))
    )
    with pytest.raises(CandleError, match="not a multiple of 1h"):
        validate_candles(off, interval="1h", grid="strict")
    assert validate_candles(off, interval="1h", grid="median").height == df.height  # G4
    with pytest.raises(CandleError, match="typically 1h apart, not 1d"):
        validate_candles(df, interval="1d", grid="median")


def test_a_month_holding_another_months_rows() -> None:
    df = bars(24 * 35)  # March 1 … April 4
    with pytest.raises(CandleError, match="outside 2024-03"):
        validate_candles(df, interval="1h", month=(2024, 3))


def test_data_files(tmp_path: Path) -> None:
    dup = tmp_path / "dup.parquet"
    pl.concat([bars(), bars().head(500 % 48)]).write_parquet(dup)
    with pytest.raises(CandleError, match="more than once"):
        read_candle_file(dup)
    no_time = tmp_path / "no_time.parquet"
    bars().drop("open_time").write_parquet(no_time)
    with pytest.raises(CandleError, match="no open_time column"):
        read_candle_file(no_time)
    hourly = tmp_path / "hourly.parquet"
    bars().write_parquet(hourly)
    with pytest.raises(CandleError, match="not a multiple of 1d"):
        read_candle_file(hourly, interval="1d")
    assert read_candle_file(hourly).height == 48


def _csv(path: Path, df: pl.DataFrame) -> Path:
    out = df.select(
        pl.col("open_time").dt.epoch("ms"),
        "open",
        "high",
        "low",
        "close",
        "volume",
        (pl.col("open_time").dt.epoch("ms") + 3_599_999).alias("close_time"),
        pl.lit(1.0).alias("q"),
        pl.lit(1).alias("t"),
        pl.lit(1.0).alias("tb"),
        pl.lit(1.0).alias("tq"),
        pl.lit(0).alias("i"),
    )
    out.write_csv(path, include_header=False)
    return path


def test_conversion_refuses_a_bad_month_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out" / "data.parquet"
    november = _csv(tmp_path / "nov.csv", bars(24 * 35))  # runs into April
    with pytest.raises(CandleError, match="outside 2024-03"):
        build_month([november], target, interval="1h", period=(2024, 3))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CandleError, match="no candles"):
        build_month([empty], target, interval="1h", period=(2024, 3))
    broken = tmp_path / "broken.csv"
    broken.write_text(_csv(tmp_path / "ok.csv", bars(4)).read_text() + "17093,abc,1,1,1\n")
    with pytest.raises(CandleError, match="unparsable CSV"):
        read_kline_csv(broken)
    assert not target.exists() and not target.parent.exists()
