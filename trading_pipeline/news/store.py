"""The stored news: per UTC day, the scored items and their hourly and daily aggregates, as
Parquet under the data layout (``news/<items|hourly|daily>/day=YYYY-MM-DD/data.parquet``),
each file written atomically (temp file, then rename).

Feeds show only their latest entries, so a day's file keeps every item ever seen for that day:
a new fetch is merged into it (deduplicated by ``uid``), never replaces it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from trading_pipeline.fsutil import atomic_path
from trading_pipeline.news.aggregate import aggregate
from trading_pipeline.news.sources import ITEM_SCHEMA, empty_items
from trading_pipeline.settings import DataLayout

TABLES = ("items", "hourly", "daily")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def of_day(items: pl.DataFrame, day: date) -> pl.DataFrame:
    start, end = day_bounds(day)
    return items.filter((pl.col("published_at") >= start) & (pl.col("published_at") < end))


def read_day(layout: DataLayout, day: date) -> pl.DataFrame | None:
    path = layout.news_path("items", day)
    return pl.read_parquet(path).cast(ITEM_SCHEMA) if path.is_file() else None  # type: ignore[arg-type]


def _write(df: pl.DataFrame, path: object) -> None:
    with atomic_path(path) as tmp:  # type: ignore[arg-type]
        df.write_parquet(tmp)


def write_day(layout: DataLayout, day: date, items: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Merge the day's ``items`` into its stored file; write items, hourly and daily tables.
    Returns the day's items after the merge and how many of them are new."""
    fresh = of_day(items, day)
    old = read_day(layout, day)
    merged = fresh if old is None else pl.concat([old, fresh]).unique("uid", keep="first")
    merged = merged.sort("published_at", "uid")
    new = merged.height - (0 if old is None else old.height)
    _write(merged, layout.news_path("items", day))
    _write(aggregate(merged, "1h"), layout.news_path("hourly", day))
    _write(aggregate(merged, "1d"), layout.news_path("daily", day))
    return merged, new


def stored_days(layout: DataLayout) -> list[date]:
    root = layout.news_dir / "items"
    if not root.is_dir():
        return []
    days = []
    for p in root.glob("day=*/data.parquet"):
        try:
            days.append(date.fromisoformat(p.parent.name.removeprefix("day=")))
        except ValueError:
            continue
    return sorted(days)


def read_items(
    layout: DataLayout, *, start: date | None = None, end: date | None = None
) -> pl.DataFrame | None:
    """Every stored item (days ``start`` .. ``end`` inclusive when given), or None when no
    day was ever stored."""
    every = stored_days(layout)
    if not every:
        return None
    days = [d for d in every if (start is None or d >= start) and (end is None or d <= end)]
    frames = [f for d in days if (f := read_day(layout, d)) is not None]
    return pl.concat(frames).sort("published_at", "uid") if frames else empty_items()


def read_table(layout: DataLayout, table: str, days: list[date]) -> pl.DataFrame | None:
    paths = [layout.news_path(table, d) for d in days if layout.news_path(table, d).is_file()]
    return pl.concat([pl.read_parquet(p) for p in paths]) if paths else None
