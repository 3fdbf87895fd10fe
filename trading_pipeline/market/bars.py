"""Bars for one series, from a candle file or the history store, with their interval."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from trading_pipeline.errors import UserInputError
from trading_pipeline.market.candles import CandleError, load_store, read_candle_file
from trading_pipeline.market.candles import infer_interval as candles_infer_interval
from trading_pipeline.market.schema import INTERVAL_MS, MARKETS

# Days a market can have: from Bitcoin's first block to well after any data (ranges built from
# them, with warm-up before and a day after, stay inside what datetime can hold).
FIRST_DAY = date(2009, 1, 3)
LAST_DAY = date(2099, 12, 31)


def check_day(day: date, flag: str) -> date:
    """``day`` if it lies in :data:`FIRST_DAY` … :data:`LAST_DAY`, else a one-line error."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise UserInputError(f"{flag} {day} is outside {FIRST_DAY} … {LAST_DAY}")
    return day


def parse_day(value: str | None, flag: str) -> date | None:
    """``YYYY-MM-DD`` as a date (``None`` stays ``None``); anything else is a user error."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise UserInputError(f"{flag} must be a date YYYY-MM-DD, got {value!r}") from None
    return check_day(day, flag)


def infer_interval(bars: pl.DataFrame) -> str:
    """The interval whose length is the median spacing of ``open_time`` (else a one-line error)."""
    if bars.height < 2:
        raise UserInputError("cannot infer the interval from one bar: pass --interval")
    name = candles_infer_interval(bars, minimum=2)
    if name is None:
        step = bars["open_time"].diff().drop_nulls().dt.total_milliseconds().median()
        raise UserInputError(
            f"cannot infer the interval (median bar spacing {step!r} ms): pass --interval"
        )
    return name


def between(bars: pl.DataFrame, first: date | None, last: date | None) -> pl.DataFrame:
    """Bars opening on the days ``first`` … ``last`` (both inclusive, UTC)."""
    if first:
        bars = bars.filter(
            pl.col("open_time") >= datetime(first.year, first.month, first.day, tzinfo=UTC)
        )
    if last:
        stop = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
        bars = bars.filter(pl.col("open_time") < stop)
    if bars.height == 0:
        raise UserInputError("no bars between --from and --to")
    return bars


def load_bars(
    *,
    symbol: str | None,
    interval: str | None,
    start: date | None,
    end: date | None,
    market: str,
    history_dir: Path,
    data: Path | None,
) -> tuple[pl.DataFrame, str]:
    """Bars and their interval from the file ``data`` or the store under ``history_dir``
    (``symbol`` and ``interval``); ``start``/``end`` are days, both inclusive."""
    if interval is not None and interval not in INTERVAL_MS:
        raise UserInputError(f"unknown interval {interval!r}; known: {', '.join(INTERVAL_MS)}")
    try:
        if data is not None:
            if symbol is not None:
                raise UserInputError("give either --data or --symbol, not both")
            bars = read_candle_file(data, interval=interval)  # spacing checked against it
            if start or end:
                bars = between(bars, start, end)
            return bars, interval or infer_interval(bars)
        if symbol is None or interval is None:
            raise UserInputError("give --data FILE, or --symbol and --interval")
        if market not in MARKETS:
            raise UserInputError(f"unknown market {market!r}; known: {', '.join(MARKETS)}")
        bars = load_store(
            history_dir,
            market=market,
            symbol=symbol.upper(),
            interval=interval,
            start=start,
            end=end,
        )
        return bars, interval
    except CandleError as exc:
        raise UserInputError(str(exc)) from exc
