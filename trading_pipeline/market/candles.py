"""Load candles into the canonical kline schema from the store or from a user's file.

Accepted files: Parquet (one file, or a hive folder of the history store), freqtrade
``.feather`` (``date, open, high, low, close, volume``) and freqtrade ``.json``
(``[[ts_ms, open, high, low, close, volume], ...]``). Columns a source lacks stay null.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from trading_pipeline.market.schema import INTERVAL_MS, KLINE_SCHEMA, UTC_US, conform


class CandleError(ValueError):
    """The candles cannot be read or are unusable (empty, NaN prices, unknown format)."""


def _from_freqtrade(df: pl.DataFrame) -> pl.DataFrame:
    return df.rename({"date": "open_time"}).with_columns(pl.col("open_time").cast(UTC_US))


def read_candle_file(path: str | Path) -> pl.DataFrame:
    """Read a Parquet file or folder, or a freqtrade feather/json file, sorted by open_time."""
    p = Path(path)
    if not p.exists():
        raise CandleError(f"no such file: {p}")
    suffix = p.suffix.lower()
    try:
        if p.is_dir() or suffix == ".parquet":
            glob = str(p / "**" / "*.parquet") if p.is_dir() else str(p)
            df = pl.scan_parquet(glob, hive_partitioning=p.is_dir()).collect()
        elif suffix == ".feather":
            df = _from_freqtrade(pl.read_ipc(p))
        elif suffix == ".json":
            rows = json.loads(p.read_text())
            df = pl.DataFrame(
                rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row"
            )
            df = df.with_columns(
                pl.from_epoch(pl.col("ts").cast(pl.Int64), "ms").alias("open_time")
            )
            df = df.with_columns(pl.col("open_time").cast(UTC_US))
        else:
            raise CandleError(f"unsupported candle file {p.name}: use .parquet, .feather or .json")
    except CandleError:
        raise
    except Exception as exc:
        raise CandleError(f"cannot read candles from {p}: {exc}") from exc
    return validate(conform(df).sort("open_time"), source=str(p))


def validate(df: pl.DataFrame, *, source: str = "candles") -> pl.DataFrame:
    """Refuse empty frames and NaN/null/non-positive prices with a one-line reason."""
    if df.height == 0:
        raise CandleError(f"{source}: no candles")
    prices = df.select("open", "high", "low", "close")
    bad = prices.select(
        pl.any_horizontal(
            [(c.is_null() | c.is_nan() | (c <= 0)) for c in map(pl.col, prices.columns)]
        )
    ).to_series()
    if bad.any():
        first = df.filter(bad)["open_time"][0]
        raise CandleError(f"{source}: NaN, missing or non-positive price at {first}")
    return df


def load_store(
    history_dir: str | Path,
    *,
    market: str,
    symbol: str,
    interval: str,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> pl.DataFrame:
    """Candles of one series from the Parquet store, ``start`` inclusive, ``end`` inclusive (dates)."""
    if interval not in INTERVAL_MS:
        raise CandleError(f"unknown interval {interval!r}")
    root = (
        Path(history_dir)
        / "parquet"
        / f"market={market}"
        / f"symbol={symbol}"
        / f"interval={interval}"
    )
    if not root.exists():
        raise CandleError(f"no history for {market} {symbol} {interval} under {root}")
    lf = pl.scan_parquet(str(root / "**" / "*.parquet"), hive_partitioning=False)
    lf = lf.select([c for c in KLINE_SCHEMA])
    if start is not None:
        lf = lf.filter(pl.col("open_time") >= _as_utc(start, end_of_day=False))
    if end is not None:
        lf = lf.filter(pl.col("open_time") <= _as_utc(end, end_of_day=True))
    df = lf.collect().unique("open_time", keep="first").sort("open_time")
    return validate(conform(df), source=f"{market} {symbol} {interval}")


def _as_utc(value: date | datetime, *, end_of_day: bool) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    t = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return t.replace(hour=23, minute=59, second=59, microsecond=999_999) if end_of_day else t
