"""Which files a series needs for ``[start, end]``, and which of them changed since last time.

* A month whose monthly zip is **listed** comes from that zip.
* With ``fill_daily``, a month without a listed monthly zip comes from its listed daily zips,
  for days in range up to yesterday (UTC).
* A monthly zip that appears later supersedes the month's dailies: they are dropped.
* A file is fetched again when its listing ETag, size or Last-Modified differ from the manifest,
  when its verified local copy is gone, or always with ``force``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.listing import ListedObject
from trading_pipeline.history.manifest import ManifestEntry
from trading_pipeline.history.vision import (
    VisionFile,
    daily_key,
    month_daily_prefix,
    monthly_key,
    parse_key,
)


@dataclass(frozen=True)
class FileTask:
    """One zip the month is made of; ``fetch`` says whether it must be downloaded (again)."""

    file: VisionFile
    listed: ListedObject
    url: str
    fetch: bool

    @property
    def key(self) -> str:
        return self.listed.key


@dataclass
class MonthPlan:
    series: Series
    year: int
    month: int
    source: str  # "monthly" | "daily" | "none"
    files: list[FileTask] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)  # daily keys a monthly zip replaces
    built: bool = False  # its Parquet exists and was built from the current files

    @property
    def to_fetch(self) -> list[FileTask]:
        return [t for t in self.files if t.fetch]

    @property
    def unchanged(self) -> bool:
        """Nothing to download, drop or rebuild."""
        return not self.to_fetch and not self.superseded and (self.built or self.source == "none")

    @property
    def label(self) -> str:
        return f"{self.series.key} {self.year:04d}-{self.month:02d}"


def months_between(start: date, end: date) -> Iterator[tuple[int, int]]:
    """(year, month) of every month overlapping ``[start, end]``."""
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def days_of_month(year: int, month: int, start: date, last: date) -> Iterator[date]:
    """Days of one month within ``[start, last]``."""
    day = max(date(year, month, 1), start)
    while day.month == month and day <= last:
        yield day
        day += timedelta(days=1)


def needs_fetch(
    listed: ListedObject, entry: ManifestEntry | None, local: Path, *, force: bool = False
) -> bool:
    """True when the zip must be (re-)downloaded."""
    if force or entry is None:
        return True
    if (entry.etag, entry.size, entry.last_modified) != (
        listed.etag,
        listed.size,
        listed.last_modified,
    ):
        return True
    if not local.with_name(local.name + ".CHECKSUM").is_file():
        return True  # a verified zip without its sidecar: fetch the .CHECKSUM again (and verify)
    try:
        return local.stat().st_size != listed.size
    except FileNotFoundError:
        return True


def superseded_dailies(
    layout: HistoryLayout, series: Series, year: int, month: int, entries: Mapping[str, object]
) -> list[str]:
    """Daily keys of a month held in the manifest or in ``raw/`` (to drop for a monthly zip)."""
    prefix = month_daily_prefix(series, year, month)
    keys = {k for k in entries if k.startswith(prefix)}
    folder = layout.raw_path(prefix).parent
    if folder.is_dir():
        name = prefix.rsplit("/", 1)[-1]
        keys.update(prefix.rsplit("/", 1)[0] + "/" + p.name for p in folder.glob(f"{name}*.zip"))
    return sorted(keys)


def _is_built(plan: MonthPlan, layout: HistoryLayout, entries: Mapping[str, ManifestEntry]) -> bool:
    if not layout.parquet_path(plan.series, plan.year, plan.month).exists():
        return False
    return all(
        (e := entries.get(t.key)) is not None and e.parquet_sha256 is not None for t in plan.files
    )


def plan_month(
    series: Series,
    year: int,
    month: int,
    *,
    listed: Mapping[str, ListedObject],
    start: date,
    end: date,
    fill_daily: bool,
    today: date,
    entries: Mapping[str, ManifestEntry],
    layout: HistoryLayout,
    vision_url: str,
    force: bool = False,
) -> MonthPlan:
    """The plan for one month, from the listing (keys → objects, both kinds mixed)."""
    keys: list[str] = []
    monthly = monthly_key(series, year, month)
    if monthly in listed:
        source, keys = "monthly", [monthly]
    elif fill_daily:
        last = min(end, today - timedelta(days=1))
        keys = [
            k
            for d in days_of_month(year, month, start, last)
            if (k := daily_key(series, d)) in listed
        ]
        source = "daily" if keys else "none"
    else:
        source = "none"
    plan = MonthPlan(series, year, month, source)
    for key in keys:
        obj = listed[key]
        fetch = needs_fetch(obj, entries.get(key), layout.raw_path(key), force=force)
        plan.files.append(FileTask(parse_key(key), obj, f"{vision_url}/{key}", fetch))
    if source == "monthly":
        plan.superseded = superseded_dailies(layout, series, year, month, entries)
    plan.built = not force and _is_built(plan, layout, entries)
    return plan


def plan_series(
    series: Series,
    start: date,
    end: date,
    *,
    listed: Mapping[str, ListedObject],
    fill_daily: bool,
    today: date,
    entries: Mapping[str, ManifestEntry],
    layout: HistoryLayout,
    vision_url: str,
    force: bool = False,
) -> list[MonthPlan]:
    """One plan per month overlapping ``[start, end]``."""
    return [
        plan_month(
            series,
            y,
            m,
            listed=listed,
            start=start,
            end=end,
            fill_daily=fill_daily,
            today=today,
            entries=entries,
            layout=layout,
            vision_url=vision_url,
            force=force,
        )
        for y, m in months_between(start, end)
    ]
