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
from trading_pipeline.market.validation import CandleError, validate_candles

__all__ = ["CandleError", "load_store", "read_candle_file", "validate"]


def epoch_to_utc(raw: pl.Expr) -> pl.Expr:
    """Integer epoch times to UTC datetimes, the unit chosen by magnitude (s, ms or µs)."""
    unit_us = (
        pl.when(raw.abs() >= 10**14)
        .then(raw)
        .when(raw.abs() >= 10**11)
        .then(raw * 1_000)
        .otherwise(raw * 1_000_000)
    )
    return unit_us.cast(pl.Int64).cast(UTC_US)


def _as_time(df: pl.DataFrame, name: str) -> pl.DataFrame:
    """``name`` as UTC µs datetimes whether it holds datetimes or integer epochs (s/ms/µs)."""
    dtype = df.schema[name]
    if dtype.is_integer():
        return df.with_columns(epoch_to_utc(pl.col(name)).alias(name))
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        return df.with_columns(pl.col(name).dt.replace_time_zone("UTC").cast(UTC_US))
    return df.with_columns(pl.col(name).cast(UTC_US))


def _from_freqtrade(df: pl.DataFrame) -> pl.DataFrame:
    return _as_time(df.rename({"date": "open_time"}), "open_time")


def read_candle_file(path: str | Path, *, interval: str | None = None) -> pl.DataFrame:
    """Read a Parquet file or folder, or a freqtrade feather/json file, sorted by open_time.

    Every bar is checked by :func:`validate_candles` (strict spacing when ``interval`` is
    given); a bad file raises :class:`CandleError` naming the bar."""
    p = Path(path)
    if not p.exists():
        raise CandleError(f"no such file: {p}")
    suffix = p.suffix.lower()
    try:
        if p.is_dir() or suffix == ".parquet":
            glob = str(p / "**" / "*.parquet") if p.is_dir() else str(p)
            df = pl.scan_parquet(glob, hive_partitioning=p.is_dir()).collect()
            if "open_time" not in df.columns:
                raise CandleError(f"{p}: no open_time column (columns: {', '.join(df.columns)})")
            df = _as_time(df, "open_time")
        elif suffix == ".feather":
            df = pl.read_ipc(p)
            if "date" not in df.columns:
                raise CandleError(f"{p}: no date column (not a freqtrade candle file)")
            df = _from_freqtrade(df)
        elif suffix == ".json":
            rows = json.loads(p.read_text())
            df = pl.DataFrame(
                rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row"
            )
            df = df.with_columns(epoch_to_utc(pl.col("ts").cast(pl.Int64)).alias("open_time"))
        else:
            raise CandleError(f"unsupported candle file {p.name}: use .parquet, .feather or .json")
    except CandleError:
        raise
    except Exception as exc:
        raise CandleError(f"cannot read candles from {p}: {exc}") from exc
    df = conform(df)
    return validate_candles(
        df, source=str(p), interval=interval or infer_interval(df), grid="strict"
    )


def infer_interval(df: pl.DataFrame, *, minimum: int = 3) -> str | None:
    """The interval whose length is the bars' median spacing, or None (too few bars, no match)."""
    if df.height < minimum or df["open_time"].null_count():
        return None
    step = df["open_time"].sort().diff().drop_nulls().dt.total_milliseconds().median()
    return next((name for name, ms in INTERVAL_MS.items() if step == ms), None)


def validate(
    df: pl.DataFrame, *, source: str = "candles", interval: str | None = None
) -> pl.DataFrame:
    """:func:`validate_candles` with Binance's tolerance for old off-grid bars (median spacing)."""
    return validate_candles(df, source=source, interval=interval, grid="median")


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
    return validate(conform(df), source=f"{market} {symbol} {interval}", interval=interval)


def _as_utc(value: date | datetime, *, end_of_day: bool) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    t = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return t.replace(hour=23, minute=59, second=59, microsecond=999_999) if end_of_day else t
