"""One candle validator for every way bars come in: ``--data`` files, the importer, the fetch's
conversion and the store reader. It refuses what would make every later number garbage and names
the first offending bar.

Refused everywhere: no bars; a null ``open_time``; times outside 2009-01-03 … tomorrow (a unit
mistake such as seconds read as milliseconds lands in 1970); repeated ``open_time``; a price that
is null, NaN, infinite, not positive or above ``MAX_PRICE``; ``low`` above ``open``/``close`` or
``high`` below them; a negative or non-finite volume; and, when the month is given, a bar outside
that month (a November file holding December rows).

Spacing: with ``grid="strict"`` (user files) every step between bars must be a whole multiple of
the interval, so an hourly file named ``-1d`` is refused; with ``grid="median"`` (Binance's own
files, whose old bars near outages are off-grid, see binance-vision.md G4) only the typical step
must equal the interval. Gaps are never refused: they are reported by ``market.quality``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import polars as pl

from trading_pipeline.market.schema import INTERVAL_MS

EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)  # the first Bitcoin block: no candle is older
MAX_PRICE = 1e12
_UNGRIDDED = frozenset({"1mo", "3d", "1w"})
GridRule = Literal["strict", "median", "off"]


class CandleError(ValueError):
    """The candles cannot be read or are unusable; the message names the source and the bar."""


def _first(df: pl.DataFrame, mask: pl.Series) -> object:
    return df.filter(mask)["open_time"][0]


def _check_times(df: pl.DataFrame, source: str, now: datetime) -> None:
    times = df["open_time"]
    if times.null_count():
        raise CandleError(f"{source}: {times.null_count()} bar(s) without an open_time")
    lo, hi = times.min(), times.max()
    latest = now + timedelta(days=1)
    if lo < EARLIEST or hi > latest:  # type: ignore[operator]
        bad = str(lo if lo < EARLIEST else hi)  # type: ignore[operator]
        raise CandleError(
            f"{source}: open_time {bad} is outside {EARLIEST:%Y-%m-%d} … {latest:%Y-%m-%d} "
            "(wrong time unit?)"
        )
    dup = times.is_duplicated()
    if dup.any():
        raise CandleError(
            f"{source}: open_time {_first(df, dup)} occurs more than once "
            f"({int(dup.sum())} rows share a time)"
        )


def _check_prices(df: pl.DataFrame, source: str) -> None:
    for col in ("open", "high", "low", "close"):
        s = df[col]
        mask = (s.is_null() | s.is_nan() | s.is_infinite() | (s <= 0) | (s > MAX_PRICE)).fill_null(
            True
        )
        if mask.any():
            value = df.filter(mask)[col][0]
            raise CandleError(
                f"{source}: bar {_first(df, mask)} has {col}={value} "
                f"(a price must be finite and positive: no NaN, inf, 0 or above {MAX_PRICE:g})"
            )
    o, h, lo, c = (pl.col(x) for x in ("open", "high", "low", "close"))
    inconsistent = df.select((h < lo) | (o > h) | (c > h) | (o < lo) | (c < lo)).to_series()
    if inconsistent.any():
        row = df.filter(inconsistent).row(0, named=True)
        raise CandleError(
            f"{source}: bar {row['open_time']} is inconsistent (open {row['open']}, high "
            f"{row['high']}, low {row['low']}, close {row['close']}: need low ≤ open, close ≤ high)"
        )
    vol = df["volume"]
    vbad = (vol < 0) | vol.is_nan() | vol.is_infinite()
    vbad = vbad.fill_null(False)
    if vbad.any():
        raise CandleError(
            f"{source}: bar {_first(df, vbad)} has volume {df.filter(vbad)['volume'][0]} "
            "(must be finite and not negative)"
        )


def _check_month(df: pl.DataFrame, source: str, month: tuple[int, int]) -> None:
    y, m = month
    t = pl.col("open_time")
    outside = df.select((t.dt.year() != y) | (t.dt.month() != m)).to_series()
    if outside.any():
        raise CandleError(
            f"{source}: bar {_first(df, outside)} is outside {y:04d}-{m:02d} "
            f"({int(outside.sum())} bars from another month)"
        )


def _check_spacing(df: pl.DataFrame, source: str, interval: str, rule: GridRule) -> None:
    if rule == "off" or interval in _UNGRIDDED or df.height < 2:
        return
    if interval not in INTERVAL_MS:
        raise CandleError(f"{source}: unknown interval {interval!r}")
    step = INTERVAL_MS[interval] * 1000
    diffs = df["open_time"].dt.epoch("us").diff()
    if rule == "median":
        if df.height < 6:  # too few steps for a typical one
            return
        median = diffs.drop_nulls().median()
        if median != step:
            raise CandleError(
                f"{source}: bars are typically {_human(median)} apart, not {interval}"  # type: ignore[arg-type]
            )
        return
    off = (diffs % step != 0).fill_null(False)
    if off.any():
        gap = diffs.filter(off)[0]
        raise CandleError(
            f"{source}: bar {_first(df, off)} is {_human(gap)} after the previous one, "
            f"not a multiple of {interval} (is the interval right?)"
        )


def _human(us: float | int | None) -> str:
    if us is None:
        return "?"
    seconds = float(us) / 1e6
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def validate_candles(
    df: pl.DataFrame,
    *,
    source: str = "candles",
    interval: str | None = None,
    grid: GridRule = "strict",
    month: tuple[int, int] | None = None,
    now: datetime | None = None,
) -> pl.DataFrame:
    """Return ``df`` (sorted by open_time) if every bar is usable, else raise :class:`CandleError`."""
    if df.height == 0:
        raise CandleError(f"{source}: no candles")
    if "open_time" not in df.columns:
        raise CandleError(f"{source}: no open_time column")
    _check_times(df, source, now or datetime.now(UTC))
    if not df["open_time"].is_sorted():
        df = df.sort("open_time")
    _check_prices(df, source)
    if month is not None:
        _check_month(df, source, month)
    if interval is not None:
        _check_spacing(df, source, interval, grid)
    return df
