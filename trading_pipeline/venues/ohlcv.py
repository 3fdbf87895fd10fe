"""Candle history from other venues (Coinbase, Binance US) through ccxt, into the history store.

Layout: a venue's series is ``Series(market=<venue>, symbol=BASE+QUOTE, interval)``, so its months
land in ``parquet/market=coinbase/symbol=BTCUSD/interval=1h/year=YYYY/month=MM/data.parquet`` beside
Binance Vision's ``market=spot`` folders, which stay exactly where they were, and
``market.candles.load_store(market="coinbase", symbol="BTCUSD", …)`` reads them like any series.
The symbol segment is base + quote with the quote kept (``BTCUSD`` on Coinbase, ``BTCUSDT`` or
``BTCUSD`` on Binance US): USD and USDT series never share a folder (see :mod:`.symbols`).

Fetching is by month. Each month is paginated through ``fetch_ohlcv`` by ``since``, one window of
``limit`` bars at a time (300 on Coinbase, ccxt's cap; 1000 on Binance US), with ``until`` bounding
the window; an empty window is a gap in the venue's history and the next one follows. Only closed
bars are kept (``open_time + interval <= now``). A month is written whole, atomically, then
recorded in the manifest under ``venue/<venue>/<native id>/<interval>/<YYYY-MM>`` with
``kind="venue"`` and ``complete`` (true once the month has ended). A re-run skips complete months
whose Parquet still has its recorded SHA-256 and refetches the rest; the month in progress is
rewritten as it grows. A run killed half-way leaves only whole months behind, and running it again
produces the same files (the writer is deterministic and identical bytes are not rewritten).

Rate limits: ccxt's ``enableRateLimit`` paces requests; a ``RateLimitExceeded``/``DDoSProtection``
(HTTP 429/418) or a network error is retried after an exponential back-off through the injected
``sleep``, so tests run without waiting and record the pauses.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import ccxt
import polars as pl

from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_write_bytes
from trading_pipeline.history.checksum import sha256_file
from trading_pipeline.history.convert import PARQUET_COMPRESSION, PARQUET_COMPRESSION_LEVEL
from trading_pipeline.history.layout import HistoryLayout
from trading_pipeline.history.manifest import Manifest, ManifestEntry
from trading_pipeline.history.plan import months_between
from trading_pipeline.market.quality import count_gaps
from trading_pipeline.market.schema import INTERVAL_MS, UTC_US, conform
from trading_pipeline.retrying import GaveUp
from trading_pipeline.venues.exchange import VENUE_RETRY, RetryPolicy, retry_after_hint
from trading_pipeline.venues.symbols import VenueSymbol, check_venue, parse_symbol

FETCH_VENUES: tuple[str, ...] = ("binanceus", "coinbase")
PAGE_LIMIT: dict[str, int] = {"coinbase": 300, "binanceus": 1000}
MANIFEST_PREFIX = "venue"
KIND = "venue"

Sleeper = Callable[[float], None]
Clock = Callable[[], datetime]


class VenueFetchError(RuntimeError):
    """The venue did not answer usefully (after retries): nothing of the month was written."""


RETRYABLE: tuple[type[Exception], ...] = (ccxt.NetworkError,)  # includes 429 (DDoSProtection)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def month_bounds_ms(year: int, month: int) -> tuple[int, int]:
    """[first ms of the month, first ms of the next month) in UTC."""
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return _ms(start), _ms(end)


def manifest_key(symbol: VenueSymbol, interval: str, year: int, month: int) -> str:
    return f"{MANIFEST_PREFIX}/{symbol.venue}/{symbol.native_id}/{interval}/{year:04d}-{month:02d}"


# ---------------------------------------------------------------- paging


@dataclass
class Pager:
    """``fetch_ohlcv`` over a time range for one symbol, page by page, retrying rate limits."""

    exchange: Any  # a ccxt.Exchange (ccxt ships no type stubs)
    symbol: VenueSymbol
    interval: str
    limit: int | None = None
    sleep: Sleeper = time.sleep
    retry: RetryPolicy = VENUE_RETRY
    requests: int = 0
    retries: int = 0
    pauses: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.limit is None:
            self.limit = PAGE_LIMIT.get(self.symbol.venue, 500)

    @property
    def step_ms(self) -> int:
        return INTERVAL_MS[self.interval]

    def page(self, since: int, until: int) -> list[list[Any]]:
        """One ``fetch_ohlcv`` call for bars opening in ``[since, until)``, retried as needed."""

        def once() -> list[list[Any]]:
            self.requests += 1
            rows = self.exchange.fetch_ohlcv(
                self.symbol.ccxt_symbol,
                self.interval,
                since=since,
                limit=self.limit,
                params={"until": until - 1},
            )
            return list(rows or [])

        def pausing(_exc: BaseException, _n: int, pause: float) -> None:
            self.retries += 1
            self.pauses.append(pause)

        policy = replace(self.retry, sleep=self.sleep)
        try:
            return policy.call(
                f"{self.symbol}",
                once,
                on=lambda e: isinstance(e, RETRYABLE),
                hint=retry_after_hint(self.exchange),
                before_retry=pausing,
            )
        except GaveUp as exc:
            raise VenueFetchError(
                f"{self.symbol}: {type(exc.last).__name__} after {exc.attempts} attempts"
            ) from exc.last
        except ccxt.BaseError as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise VenueFetchError(f"{self.symbol}: {type(exc).__name__}: {first}") from exc

    def fetch(self, start_ms: int, end_ms: int) -> list[list[Any]]:
        """Every bar opening in ``[start_ms, end_ms)``, oldest first, one per open time."""
        assert self.limit is not None
        step = self.step_ms
        bars: dict[int, list[Any]] = {}
        since = start_ms
        while since < end_ms:
            window_end = min(end_ms, since + self.limit * step)
            rows = [r for r in self.page(since, window_end) if since <= int(r[0]) < window_end]
            for r in rows:
                bars.setdefault(int(r[0]), r)
            # a short page (the venue capped it, or the window ends in a gap) continues after
            # its last bar; an empty one is a gap in the venue's history: skip the window
            since = max(int(r[0]) for r in rows) + step if rows else window_end
        return [bars[t] for t in sorted(bars)]


def to_frame(rows: Sequence[Sequence[Any]]) -> pl.DataFrame:
    """ccxt OHLCV rows → the canonical kline schema (venue-less columns stay null)."""
    frame = pl.DataFrame(
        [list(r[:6]) for r in rows],
        schema={
            "ts": pl.Int64,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        },
        orient="row",
    )
    frame = frame.with_columns(pl.from_epoch("ts", "ms").cast(UTC_US).alias("open_time"))
    return conform(frame).sort("open_time")


def parquet_bytes(df: pl.DataFrame) -> bytes:
    """The month's Parquet, written the same way every time (same rows → same bytes)."""
    buf = io.BytesIO()
    df.write_parquet(
        buf,
        compression=PARQUET_COMPRESSION,
        compression_level=PARQUET_COMPRESSION_LEVEL,
        statistics=True,
    )
    return buf.getvalue()


# ---------------------------------------------------------------- months


@dataclass(frozen=True)
class MonthResult:
    period: str  # YYYY-MM
    status: str  # "written" | "unchanged" | "complete" (skipped, already whole) | "empty"
    rows: int
    complete: bool
    gaps: int = 0
    missing_bars: int = 0
    path: Path | None = None
    sha256: str | None = None
    first_open_time: datetime | None = None
    last_open_time: datetime | None = None


def _intact(entry: ManifestEntry, target: Path) -> bool:
    if not entry.rows:
        return not target.exists()
    return target.exists() and sha256_file(target) == entry.parquet_sha256


def _skip_result(period: str, entry: ManifestEntry, target: Path) -> MonthResult:
    return MonthResult(
        period,
        "complete",
        entry.rows or 0,
        True,
        entry.gaps or 0,
        entry.missing_bars or 0,
        target if entry.rows else None,
        entry.parquet_sha256,
    )


def fetch_month(
    pager: Pager,
    year: int,
    month: int,
    *,
    layout: HistoryLayout,
    now: datetime,
    force: bool = False,
) -> MonthResult:
    """Fetch one month of ``pager``'s symbol into the store (see the module docstring)."""
    symbol, interval = pager.symbol, pager.interval
    series = symbol.series(interval)
    period = f"{year:04d}-{month:02d}"
    key = manifest_key(symbol, interval, year, month)
    target = layout.parquet_path(series, year, month)
    manifest = Manifest(layout.manifest_path)
    entry = manifest.get(key)
    if not force and entry is not None and entry.extra.get("complete") and _intact(entry, target):
        return _skip_result(period, entry, target)
    start_ms, end_ms = month_bounds_ms(year, month)
    now_ms = _ms(now)
    complete = end_ms <= now_ms
    step = INTERVAL_MS[interval]
    rows = pager.fetch(start_ms, min(end_ms, now_ms))
    rows = [r for r in rows if int(r[0]) + step <= now_ms]  # closed bars only
    df = to_frame(rows)
    rel = target.relative_to(layout.root).as_posix()
    common: dict[str, Any] = {
        "key": key,
        "market": series.market,
        "symbol": series.symbol,
        "interval": interval,
        "period": period,
        "kind": KIND,
        "source": f"ccxt:{symbol.venue}",
        "written_at": utc_now(),
        "extra": {
            "complete": complete,
            "venue": symbol.venue,
            "native_id": symbol.native_id,
            "ccxt_symbol": symbol.ccxt_symbol,
            "base": symbol.base,
            "quote": symbol.quote,
        },
    }
    if df.height == 0:
        if target.exists():  # the venue returns nothing now but did before: keep what we have
            raise VenueFetchError(f"{symbol} {period}: no candles now, but {rel} holds some")
        manifest.update([ManifestEntry(rows=0, gaps=0, missing_bars=0, **common)])
        return MonthResult(period, "empty", 0, complete)
    data = parquet_bytes(df)
    digest = hashlib.sha256(data).hexdigest()
    changed = not (target.exists() and sha256_file(target) == digest)
    if changed:
        atomic_write_bytes(target, data)
    gaps, missing = count_gaps(df, interval)
    first, last = df["open_time"][0], df["open_time"][-1]
    manifest.update(
        [
            ManifestEntry(
                rows=df.height,
                first_open_time=first,
                last_open_time=last,
                gaps=gaps,
                missing_bars=missing,
                parquet_path=rel,
                parquet_sha256=digest,
                **common,
            )
        ]
    )
    status = "written" if changed else "unchanged"
    return MonthResult(
        period, status, df.height, complete, gaps, missing, target, digest, first, last
    )


# ---------------------------------------------------------------- a whole request


@dataclass(frozen=True)
class VenueFetchRequest:
    venue: str
    symbol: str
    interval: str
    start: date
    end: date
    force: bool = False


@dataclass
class VenueFetchSummary:
    series: str
    months: list[MonthResult] = field(default_factory=list)
    requests: int = 0
    retries: int = 0

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.months)

    def count(self, status: str) -> int:
        return sum(m.status == status for m in self.months)

    def lines(self) -> list[str]:
        out = [
            f"{m.period} {m.status} rows={m.rows} gaps={m.gaps}"
            + ("" if m.complete else " (month in progress)")
            for m in self.months
        ]
        out.append(
            f"{self.series}: months {len(self.months)} ({self.count('written')} written, "
            f"{self.count('unchanged')} unchanged, {self.count('complete')} already complete, "
            f"{self.count('empty')} empty); rows {self.rows}; requests {self.requests}; "
            f"retries {self.retries}"
        )
        return out


Progress = Callable[[MonthResult, int, int], None]


def validate_request(request: VenueFetchRequest, *, today: date) -> VenueSymbol:
    """Check venue, symbol spelling, interval and dates before any request or write."""
    venue = check_venue(request.venue)
    if venue not in FETCH_VENUES:
        raise UserInputError(
            f"venue fetch covers {', '.join(FETCH_VENUES)}; Binance spot history comes from "
            "Binance Vision (trading-pipeline fetch)"
        )
    symbol = parse_symbol(venue, request.symbol)
    if request.interval not in INTERVAL_MS:
        raise UserInputError(f"unknown interval {request.interval!r}")
    if request.start > request.end:
        raise UserInputError(f"--from {request.start} is after --to {request.end}")
    if request.start > today:
        raise UserInputError(f"--from {request.start} is in the future (today is {today})")
    return symbol


def check_listed(
    exchange: Any, symbol: VenueSymbol, interval: str, *, sleep: Sleeper = time.sleep
) -> None:
    """``UserInputError`` unless the venue offers ``interval`` candles and lists ``symbol``.

    Loads the markets (retried like candles): that is the venue's own listing.
    """
    timeframes = getattr(exchange, "timeframes", None) or {}
    if interval not in timeframes:
        raise UserInputError(
            f"{symbol.venue} has no {interval} candles: use one of {', '.join(timeframes)}"
        )
    markets = _load_markets(exchange, symbol, sleep)
    if symbol.ccxt_symbol not in markets:
        same_base = sorted(
            m["id"] for m in markets.values() if m.get("base") == symbol.base and m.get("spot")
        )
        hint = f" (listed for {symbol.base}: {', '.join(same_base[:6])})" if same_base else ""
        raise UserInputError(f"symbol {symbol.native_id} is not listed on {symbol.venue}{hint}")


def _load_markets(exchange: Any, symbol: VenueSymbol, sleep: Sleeper) -> Any:
    policy = replace(VENUE_RETRY, attempts=3, sleep=sleep)
    try:
        return policy.call(
            f"{symbol.venue}: load markets",
            exchange.load_markets,
            on=lambda e: isinstance(e, RETRYABLE),
            hint=retry_after_hint(exchange),
        )
    except GaveUp as exc:
        raise VenueFetchError(
            f"{symbol.venue}: cannot load markets ({type(exc.last).__name__})"
        ) from exc.last
    except ccxt.BaseError as exc:
        raise VenueFetchError(
            f"{symbol.venue}: cannot load markets ({type(exc).__name__})"
        ) from exc


def run_venue_fetch(
    request: VenueFetchRequest,
    *,
    exchange: Any,
    layout: HistoryLayout,
    now: Clock = utc_now,
    sleep: Sleeper = time.sleep,
    retry: RetryPolicy | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> VenueFetchSummary:
    """Fetch the months of ``request`` from ``exchange`` into ``layout``; see the module docstring.

    ``--to`` later than today is clipped to today. Bad input raises ``UserInputError`` before
    any file is written; a venue that stops answering raises :class:`VenueFetchError` after the
    months already finished were written (a re-run resumes from there).
    """
    moment = now()
    symbol = validate_request(request, today=moment.date())
    check_listed(exchange, symbol, request.interval, sleep=sleep)
    pager = Pager(
        exchange, symbol, request.interval, limit=limit, sleep=sleep, retry=retry or VENUE_RETRY
    )
    summary = VenueFetchSummary(series=symbol.series(request.interval).key)
    months = list(months_between(request.start, min(request.end, moment.date())))
    try:
        for done, (year, month) in enumerate(months, 1):
            result = fetch_month(pager, year, month, layout=layout, now=moment, force=request.force)
            summary.months.append(result)
            if progress:
                progress(result, done, len(months))
    finally:
        summary.requests, summary.retries = pager.requests, pager.retries
    return summary
