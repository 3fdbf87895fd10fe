"""Generate small, deterministic Binance Vision trees (zips + official ``.CHECKSUM``) for tests
and benchmarks: a smooth seeded price path rendered through the package's Vision writer.
"""

from __future__ import annotations

import calendar
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from trading_pipeline.history.layout import Series
from trading_pipeline.history.vision import VisionFile
from trading_pipeline.history.vision_writer import Row, kline_csv, write_vision_file
from trading_pipeline.market.schema import INTERVAL_MS

RowsFn = Callable[[Series, datetime, datetime, int], Iterable[Row]]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def bar_open_times(interval: str, start: datetime, end: datetime) -> Iterator[int]:
    """Open times (ms) of the bars starting in ``[start, end)``, on the UTC interval grid."""
    if interval == "1mo":
        cur = datetime(start.year, start.month, 1, tzinfo=UTC)
        if cur < start:
            cur = next_month(cur)
        while cur < end:
            yield _ms(cur)
            cur = next_month(cur)
        return
    step = INTERVAL_MS[interval]
    first = -(-_ms(start) // step) * step
    yield from range(first, _ms(end), step)


def next_month(moment: datetime) -> datetime:
    """The first instant of the month after ``moment``'s."""
    days = calendar.monthrange(moment.year, moment.month)[1]
    return (moment.replace(day=1) + timedelta(days=days)).replace(day=1)


def price_at(series: Series, open_ms: int, seed: int) -> float:
    """The close of the bar opening at ``open_ms``: a smooth, trending path (weeks-long up and
    down swings) with seeded noise, a function of time alone, so that consecutive files join
    without a jump and the same bar is the same in a monthly and in a daily file."""
    base = 100.0 + random.Random(series.key).random() * 50_000
    days = open_ms / 86_400_000
    trend = (
        0.35 * math.sin(days / 41.0)
        + 0.15 * math.sin(days / 13.0 + 1.0)
        + 0.04 * math.sin(days / 2.7)
    )
    noise = random.Random(f"{series.key}:{open_ms}:{seed}").gauss(0, 0.002)
    return base * math.exp(trend) * (1 + noise)


def random_walk_rows(series: Series, start: datetime, end: datetime, seed: int) -> Iterator[Row]:
    """Seeded OHLCV bars for every grid slot in ``[start, end)``; each opens at the previous close."""
    rng = random.Random(f"{series.key}:{start.isoformat()}:{seed}")
    opens = list(bar_open_times(series.interval, start, end))
    step = INTERVAL_MS[series.interval]
    for i, open_ms in enumerate(opens):
        if series.interval == "1mo":
            close_ms = (opens[i + 1] if i + 1 < len(opens) else _ms(end)) - 1
        else:
            close_ms = open_ms + step - 1
        price = price_at(series, open_ms - step, seed)
        close = price_at(series, open_ms, seed)
        high = max(price, close) * (1 + rng.random() * 0.001)
        low = min(price, close) * (1 - rng.random() * 0.001)
        volume = rng.random() * 100
        taker = volume * rng.random()
        mid = (high + low) / 2
        yield (open_ms, price, high, low, close, volume, close_ms, volume * mid,
               rng.randint(1, 5000), taker, taker * mid)  # fmt: skip


def _bounds(file: VisionFile) -> tuple[datetime, datetime]:
    start = datetime(file.period.year, file.period.month, file.period.day, tzinfo=UTC)
    end = next_month(start) if file.kind == "monthly" else start + timedelta(days=1)
    return start, end


def make_vision_tree(
    root: Path,
    series: Series,
    *,
    months: Sequence[tuple[int, int]] = (),
    days: Sequence[date] = (),
    rows: RowsFn = random_walk_rows,
    seed: int = 0,
    header: bool = False,
    checksum_newline: bool = False,
) -> list[Path]:
    """Write monthly zips for ``months`` and daily zips for ``days`` of ``series`` under ``root``
    (``root/data/spot/…``), each with its official 91-byte-style ``.CHECKSUM``; return the zips.

    Change ``seed`` to "re-publish" a file with different bytes.
    """
    files = [
        VisionFile(series.market, series.symbol, series.interval, "monthly", date(y, m, 1))
        for y, m in months
    ] + [VisionFile(series.market, series.symbol, series.interval, "daily", d) for d in days]
    written = []
    for file in files:
        start, end = _bounds(file)
        payload = kline_csv(series, file.period, rows(series, start, end, seed), header=header)
        written.append(write_vision_file(root, file, payload, checksum_newline=checksum_newline))
    return written


def month_days(year: int, month: int, *, until: date | None = None) -> list[date]:
    """Every day of a month (up to ``until`` inclusive when given)."""
    last = calendar.monthrange(year, month)[1]
    days = [date(year, month, d) for d in range(1, last + 1)]
    return [d for d in days if until is None or d <= until]


def month_range(start: tuple[int, int], count: int) -> list[tuple[int, int]]:
    """``count`` consecutive (year, month) pairs from ``start``."""
    year, month = start
    out = []
    for _ in range(count):
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out
