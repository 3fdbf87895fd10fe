"""Fetch kline history from Binance Vision: list → plan → download and verify → CSV → Parquet.

``run_fetch`` does a whole request; ``download_month``, ``extract_month`` and
``build_month_parquet`` are the per-(series, month) stages the Dagster assets call.
Everything is validated and listed before the first file is written, so bad input changes
nothing. The command line is ``trading-pipeline fetch`` (``trading_pipeline.cli.history``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
from filelock import FileLock, Timeout

from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_write_bytes, process_start_time, remove_stale_temporaries
from trading_pipeline.history import convert
from trading_pipeline.history.checksum import sha256_file
from trading_pipeline.history.download import (
    DownloadError,
    RetryPolicy,
    download_verified,
    fetch_checksum,
    make_client,
)
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.listing import ListedObject, ListingError, list_objects, list_prefixes
from trading_pipeline.history.manifest import Manifest, ManifestEntry
from trading_pipeline.history.plan import FileTask, MonthPlan, months_between, plan_month
from trading_pipeline.history.vision import (
    month_daily_prefix,
    monthly_key,
    parse_key,
    series_prefix,
    symbols_prefix,
    validate_interval,
    validate_market,
    validate_range,
    validate_symbol,
)
from trading_pipeline.market.quality import count_gaps

MonthBuild = convert.MonthBuild


class FetchError(RuntimeError):
    """A stage could not run (e.g. no verified zip for a month)."""


class FileRejected(FetchError):
    """A verified zip failed conversion (e.g. extra members); it has been removed."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key


@dataclass(frozen=True)
class FetchRequest:
    market: str
    symbols: tuple[str, ...]
    interval: str
    start: date
    end: date
    fill_daily: bool = False
    force: bool = False


@dataclass(frozen=True)
class FileResult:
    key: str
    url: str
    sha256: str | None
    size: int | None
    status: str  # "new" | "skipped" | "failed"
    error: str | None = None


@dataclass
class MonthDownload:
    series: Series
    year: int
    month: int
    source: str  # "monthly" | "daily" | "none"
    files: list[FileResult] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def changed(self) -> bool:
        return any(f.status == "new" for f in self.files) or bool(self.superseded)


@dataclass
class FetchEvent:
    """A progress report: ``stage`` is "list", "download" or "build"."""

    stage: str
    item: str
    status: str
    done: int
    total: int


@dataclass
class FetchSummary:
    new: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    rows: int = 0
    gaps: int = 0
    months: list[MonthBuild] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    months_unchanged: int = 0
    litter_removed: int = 0  # hidden temporaries a killed run left, removed at start

    @property
    def ok(self) -> bool:
        return not self.failed

    def fail(self, key: str, error: str) -> None:
        if key not in self.errors:
            self.failed.append(key)
        self.errors[key] = error

    def lines(self) -> list[str]:
        out = [
            f"files: {self.new} new, {self.skipped} skipped, {len(self.failed)} failed; "
            f"months built: {len(self.months)} ({self.months_unchanged} unchanged); "
            f"rows: {self.rows}; gaps: {self.gaps}"
        ]
        out += [f"failed: {key}: {self.errors[key]}" for key in self.failed]
        return out


Progress = Callable[[FetchEvent], None]


@contextlib.contextmanager
def _client(client: httpx.Client | None) -> Iterator[httpx.Client]:
    if client is not None:
        yield client
        return
    with make_client() as own:
        yield own


def _today(today: date | None) -> date:
    return today or datetime.now(UTC).date()


# ---------------------------------------------------------------- listing


def _listing(
    client: httpx.Client, listing_url: str, prefix: str, marker: str | None = None
) -> dict[str, ListedObject]:
    return {o.key: o for o in list_objects(client, listing_url, prefix, marker=marker)}


def _require_symbol(client: httpx.Client, listing_url: str, market: str, symbol: str) -> None:
    """Raise ``UserInputError`` unless the symbol is a CommonPrefix of the market's klines."""
    for kind in ("monthly", "daily"):
        base = symbols_prefix(market, kind)
        if base + symbol + "/" in list_prefixes(client, listing_url, base + symbol):
            return
    raise UserInputError(f"unknown symbol {symbol} on {market} (not in the Binance Vision listing)")


def _list_series(
    client: httpx.Client, listing_url: str, series: Series, request: FetchRequest
) -> dict[str, ListedObject]:
    """The monthly listing from the start month (and the daily one when months lack monthlies)."""
    stem = f"{series.symbol}-{series.interval}-{request.start:%Y-%m}"
    prefix = series_prefix(series, "monthly")
    listed = _listing(client, listing_url, prefix, marker=prefix + stem)
    wanted = [monthly_key(series, y, m) for y, m in months_between(request.start, request.end)]
    if request.fill_daily and any(k not in listed for k in wanted):
        first = parse_key(next(k for k in wanted if k not in listed)).period
        marker = month_daily_prefix(series, first.year, first.month)[:-1]
        listed |= _listing(client, listing_url, series_prefix(series, "daily"), marker=marker)
    if not listed:
        _require_symbol(client, listing_url, series.market, series.symbol)
    return listed


def validate_request(request: FetchRequest) -> FetchRequest:
    """Check every field; symbols upper-cased and deduplicated. Raises ``UserInputError``."""
    validate_market(request.market)
    validate_interval(request.interval, request.market, fill_daily=request.fill_daily)
    validate_range(request.start, request.end)
    symbols = tuple(dict.fromkeys(validate_symbol(s) for s in request.symbols))
    if not symbols:
        raise UserInputError("no symbol given")
    return replace(request, symbols=symbols)


# ---------------------------------------------------------------- downloading


def _download_one(
    task: FileTask,
    *,
    client: httpx.Client,
    layout: HistoryLayout,
    force: bool,
    retry: RetryPolicy | None,
) -> FileResult:
    """Download one zip, unless the local copy already has the published checksum.

    A per-file lock (under ``<history>/.locks``) keeps two fetches from writing one ``.part``.
    """
    dest = layout.raw_path(task.key)
    lock = layout.root / ".locks" / (task.key.replace("/", "_") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(lock), timeout=600):
            expected = fetch_checksum(client, task.url, retry or RetryPolicy())
            if (
                not force
                and dest.exists()
                and dest.stat().st_size == task.listed.size
                and sha256_file(dest) == expected  # same bytes: only the listing changed
            ):
                sidecar = dest.with_name(dest.name + ".CHECKSUM")
                if not sidecar.is_file():  # a verified zip lost its sidecar: write it again
                    atomic_write_bytes(sidecar, f"{expected}  {dest.name}".encode())
                return FileResult(task.key, task.url, expected, task.listed.size, "skipped")
            digest = download_verified(
                client, task.url, dest, expected_size=task.listed.size, retry=retry,
                expected_sha256=expected,
            )  # fmt: skip
    except (DownloadError, OSError, Timeout) as exc:
        return FileResult(task.key, task.url, None, None, "failed", str(exc))
    return FileResult(task.key, task.url, digest, dest.stat().st_size, "new")


def _download_all(
    tasks: Sequence[FileTask],
    *,
    client: httpx.Client,
    layout: HistoryLayout,
    force: bool,
    concurrency: int,
    retry: RetryPolicy | None = None,
    progress: Progress | None = None,
) -> dict[str, FileResult]:
    results: dict[str, FileResult] = {}
    if not tasks:
        return results

    def one(task: FileTask) -> FileResult:
        return _download_one(task, client=client, layout=layout, force=force, retry=retry)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for result in pool.map(one, tasks):
            results[result.key] = result
            if progress:
                progress(
                    FetchEvent("download", result.key, result.status, len(results), len(tasks))
                )
    return results


def _remove_files(layout: HistoryLayout, keys: Iterable[str]) -> None:
    for key in keys:
        raw = layout.raw_path(key)
        for path in (raw, raw.with_name(raw.name + ".CHECKSUM"), layout.csv_path(key)):
            path.unlink(missing_ok=True)


def _entry(task: FileTask, result: FileResult, old: ManifestEntry | None) -> ManifestEntry:
    listed = task.listed
    if result.status == "skipped" and old is not None:  # same bytes, new listing metadata
        return replace(old, etag=listed.etag, size=listed.size, last_modified=listed.last_modified)
    file = task.file
    return ManifestEntry(
        key=task.key,
        url=task.url,
        market=file.market,
        symbol=file.symbol,
        interval=file.interval,
        period=file.period_label,
        kind=file.kind,
        sha256=result.sha256,
        size=listed.size,
        etag=listed.etag,
        last_modified=listed.last_modified,
        source="binance-vision",
        written_at=datetime.now(UTC),
    )


def _settle(
    plan: MonthPlan,
    results: Mapping[str, FileResult],
    *,
    layout: HistoryLayout,
    manifest: Manifest,
    entries: Mapping[str, ManifestEntry],
) -> MonthDownload:
    """Record a month's downloads in the manifest and drop the dailies a monthly zip replaced."""
    out = MonthDownload(plan.series, plan.year, plan.month, plan.source)
    updates = []
    for task in plan.files:
        result = results.get(task.key)
        if result is None:  # up to date: nothing was fetched
            old = entries.get(task.key)
            sha = old.sha256 if old else None
            result = FileResult(task.key, task.url, sha, task.listed.size, "skipped")
        elif result.status != "failed":
            updates.append(_entry(task, result, entries.get(task.key)))
        out.files.append(result)
    out.superseded = list(plan.superseded)
    if updates or out.superseded:
        manifest.update(updates, remove=out.superseded)
        _remove_files(layout, out.superseded)
    return out


def download_month(
    series: Series,
    year: int,
    month: int,
    *,
    layout: HistoryLayout,
    vision_url: str,
    listing_url: str,
    client: httpx.Client | None = None,
    fill_daily: bool = False,
    force: bool = False,
    today: date | None = None,
    concurrency: int = 4,
    retry: RetryPolicy | None = None,
) -> MonthDownload:
    """Verified zips (and ``.CHECKSUM``) of one month in ``raw/``; manifest updated."""
    manifest = Manifest(layout.manifest_path)
    entries = manifest.load()
    with _client(client) as http:
        monthly = monthly_key(series, year, month)
        listing_url = listing_url.rstrip("/")
        listed = _listing(http, listing_url, monthly[: -len(".zip")])
        if fill_daily and monthly not in listed:
            listed |= _listing(http, listing_url, month_daily_prefix(series, year, month))
        first = date(year, month, 1)
        last = date(year + month // 12, month % 12 + 1, 1)
        plan = plan_month(
            series,
            year,
            month,
            listed=listed,
            start=first,
            end=last,
            fill_daily=fill_daily,
            today=_today(today),
            entries=entries,
            layout=layout,
            vision_url=vision_url.rstrip("/"),
            force=force,
        )
        results = _download_all(
            plan.to_fetch,
            client=http,
            layout=layout,
            force=force,
            concurrency=concurrency,
            retry=retry,
        )
    return _settle(plan, results, layout=layout, manifest=manifest, entries=entries)


# ---------------------------------------------------------------- converting


def source_keys(layout: HistoryLayout, series: Series, year: int, month: int) -> list[str]:
    """Keys of the verified zips that make up the month: its monthly zip, else its dailies."""
    monthly = monthly_key(series, year, month)
    if layout.raw_path(monthly).exists():
        return [monthly]
    prefix = month_daily_prefix(series, year, month)
    folder = layout.raw_path(prefix).parent
    if not folder.is_dir():
        return []
    base, name = prefix.rsplit("/", 1)
    return sorted(f"{base}/{p.name}" for p in folder.glob(f"{name}??.zip"))


def _reject(layout: HistoryLayout, key: str, reason: str) -> FileRejected:
    _remove_files(layout, [key])
    Manifest(layout.manifest_path).update([], remove=[key])
    return FileRejected(key, reason)


def extract_month(series: Series, year: int, month: int, *, layout: HistoryLayout) -> list[Path]:
    """CSV files for the month's current source zips (a rejected zip is removed and raised)."""
    keys = source_keys(layout, series, year, month)
    if keys and keys[0].endswith(f"{year:04d}-{month:02d}.zip"):  # monthly: drop daily CSVs
        prefix = month_daily_prefix(series, year, month)
        folder = layout.csv_path(prefix + "01.zip").parent
        if folder.is_dir():
            for stale in folder.glob(f"{prefix.rsplit('/', 1)[1]}??.csv"):
                stale.unlink(missing_ok=True)
    paths = []
    for key in keys:
        try:
            paths.append(convert.extract_zip(layout.raw_path(key), layout.csv_path(key)))
        except convert.ZipRejected as exc:
            raise _reject(layout, key, f"rejected: {exc}") from exc
    return paths


def _file_stats(csv_path: Path, interval: str) -> dict[str, object]:
    frame = convert.read_kline_csv(csv_path)
    gaps, missing = count_gaps(frame, interval)
    return {
        "rows": frame.height,
        "first_open_time": frame["open_time"][0] if frame.height else None,
        "last_open_time": frame["open_time"][-1] if frame.height else None,
        "gaps": gaps,
        "missing_bars": missing,
    }


def build_month_parquet(
    series: Series, year: int, month: int, *, layout: HistoryLayout
) -> MonthBuild:
    """Build the month's Parquet from its current source CSVs and record it in the manifest."""
    keys = source_keys(layout, series, year, month)
    if not keys:
        raise FetchError(f"no verified zip for {series.key} {year:04d}-{month:02d}")
    csvs = []
    for key in keys:
        csv = layout.csv_path(key)
        if not csv.exists():
            try:
                convert.extract_zip(layout.raw_path(key), csv)
            except convert.ZipRejected as exc:
                raise _reject(layout, key, f"rejected: {exc}") from exc
        csvs.append(csv)
    target = layout.parquet_path(series, year, month)
    build = convert.build_month(csvs, target, interval=series.interval, period=(year, month))
    manifest = Manifest(layout.manifest_path)
    entries = manifest.load()
    rel = target.relative_to(layout.root).as_posix()
    now = datetime.now(UTC)
    updates = []
    for key, csv in zip(keys, csvs, strict=True):
        entry = entries.get(key) or ManifestEntry(key=key)
        stats: Mapping[str, object]
        if len(keys) == 1:
            stats = {
                "rows": build.rows,
                "first_open_time": build.first_open_time,
                "last_open_time": build.last_open_time,
                "gaps": build.gaps,
                "missing_bars": build.missing_bars,
            }
        else:
            stats = _file_stats(csv, series.interval)
        updates.append(
            replace(entry, parquet_path=rel, parquet_sha256=build.sha256, written_at=now, **stats)  # type: ignore[arg-type]
        )
    manifest.update(updates)
    return build


# ---------------------------------------------------------------- the whole fetch


def run_fetch(
    request: FetchRequest,
    *,
    layout: HistoryLayout,
    vision_url: str,
    listing_url: str,
    client: httpx.Client | None = None,
    concurrency: int = 4,
    today: date | None = None,
    progress: Progress | None = None,
    retry: RetryPolicy | None = None,
) -> FetchSummary:
    """Fetch and convert everything ``request`` asks for; see the module docstring."""
    request = validate_request(request)
    today = _today(today)
    vision_url, listing_url = vision_url.rstrip("/"), listing_url.rstrip("/")
    manifest = Manifest(layout.manifest_path)
    entries = manifest.load()
    summary = FetchSummary()
    # hidden temporaries of a killed run (never under a final name) are litter: remove them
    summary.litter_removed = remove_stale_temporaries(layout.root, older_than=process_start_time())
    with _client(client) as http:
        plans: list[MonthPlan] = []
        counts: dict[str, int] = {}
        for symbol in request.symbols:  # list everything before writing anything
            series = Series(request.market, symbol, request.interval)
            try:
                listed = _list_series(http, listing_url, series, request)
            except ListingError as exc:
                summary.fail(series.key, f"listing failed: {exc}")
                continue
            counts[series.key] = len(listed)
            plans += [
                plan_month(
                    series,
                    y,
                    m,
                    listed=listed,
                    start=request.start,
                    end=request.end,
                    fill_daily=request.fill_daily,
                    today=today,
                    entries=entries,
                    layout=layout,
                    vision_url=vision_url,
                    force=request.force,
                )
                for y, m in months_between(request.start, request.end)
            ]
        for done, (key, count) in enumerate(counts.items(), 1):  # reported once all is listed
            if progress:
                progress(FetchEvent("list", key, f"{count} objects", done, len(counts)))
        tasks = [t for p in plans if not p.unchanged for t in p.to_fetch]
        results = _download_all(
            tasks,
            client=http,
            layout=layout,
            force=request.force,
            concurrency=concurrency,
            retry=retry,
            progress=progress,
        )
    for done, plan in enumerate(plans, 1):
        if plan.unchanged:
            summary.skipped += len(plan.files)
            summary.months_unchanged += plan.source != "none"
            continue
        _convert_month(plan, results, layout, manifest, entries, summary)
        if progress:
            progress(FetchEvent("build", plan.label, plan.source, done, len(plans)))
    return summary


def _convert_month(
    plan: MonthPlan,
    results: Mapping[str, FileResult],
    layout: HistoryLayout,
    manifest: Manifest,
    entries: Mapping[str, ManifestEntry],
    summary: FetchSummary,
) -> None:
    got = _settle(plan, results, layout=layout, manifest=manifest, entries=entries)
    for f in got.files:
        if f.status == "failed":
            summary.fail(f.key, f.error or "failed")
        elif f.status == "new":
            summary.new += 1
        else:
            summary.skipped += 1
    if got.failed or got.source == "none":
        return  # never convert a month with an unverified file
    if plan.built and not got.changed:  # only listing metadata changed: same bytes
        summary.months_unchanged += 1
        return
    try:
        extract_month(plan.series, plan.year, plan.month, layout=layout)
        build = build_month_parquet(plan.series, plan.year, plan.month, layout=layout)
    except FileRejected as exc:
        summary.fail(exc.key, str(exc).split(": ", 1)[1])
        return
    except (FetchError, ValueError, OSError) as exc:
        summary.fail(plan.label, f"conversion failed: {exc}")
        return
    summary.months.append(build)
    summary.rows += build.rows
    summary.gaps += build.gaps
