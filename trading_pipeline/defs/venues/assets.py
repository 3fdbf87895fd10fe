"""Venue candles (ccxt) partitioned by venue series × month, and the basis asset.

``venue_candles`` calls ``venues.ohlcv.fetch_month`` for each partition: the files go into the
history store under ``market=<venue>`` with manifest entries, exactly as ``trading-pipeline venue
fetch`` writes them. ``venue_basis`` joins Binance (Vision history, ``market=spot``) and Coinbase
on UTC open time through ``market.align`` and writes the aligned bars with the per-bar basis as
Parquet (the arbitrage study reads it). The USDT/USD
quote difference is accepted only because the asset's config names it (``equate_quotes``), and the
metadata says that the basis includes the USDT/USD rate.

The venues' URLs come from ``TP_COINBASE_URL`` / ``TP_BINANCEUS_URL`` (a mirror or a local fake;
unset means the real venues), read by the ``VenueExchanges`` resource.
"""

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from trading_pipeline.defs.history.assets import klines
from trading_pipeline.defs.history.metadata import add_month_metadata
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.tables import tidy
from trading_pipeline.defs.venues.partitions import split_venue_key, venue_month
from trading_pipeline.defs.venues.resources import VenueExchanges
from trading_pipeline.defs.versions import DATA, source_version
from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_path
from trading_pipeline.history.checksum import sha256_file
from trading_pipeline.market.align import align_venues, alignment_report, basis
from trading_pipeline.market.candles import CandleError, load_store
from trading_pipeline.venues.ohlcv import (
    MonthResult,
    Pager,
    VenueFetchError,
    check_listed,
    fetch_month,
    month_bounds_ms,
    utc_now,
)
from trading_pipeline.venues.symbols import (
    VenueSymbol,
    from_series,
    parse_symbol,
    quote_difference,
    require_equivalent,
)

GROUP = "venues"
OWNERS = [DATA]
KEY_PREFIX = ["venues"]


class VenueFetchConfig(dg.Config):
    """How the venue months are fetched."""

    force: bool = Field(default=False, description="refetch months already complete")


def _month_started(year: int, month: int, now: datetime) -> bool:
    return month_bounds_ms(year, month)[0] < int(now.timestamp() * 1000)


@dg.asset(
    key_prefix=KEY_PREFIX,
    partitions_def=venue_month,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    kinds={"python", "parquet"},
    code_version=source_version(__name__, "trading_pipeline.venues.ohlcv"),
    owners=OWNERS,
)
def venue_candles(
    context: dg.AssetExecutionContext,
    config: VenueFetchConfig,
    lake: DataLake,
    venues: VenueExchanges,
) -> dg.MaterializeResult:
    """Closed candles of one venue series for the month, fetched through ccxt into the store."""
    layout = lake.layout.history
    now = utc_now()
    pagers: dict[str, Pager] = {}
    done: list[tuple[str, MonthResult | None]] = []
    try:
        for key in context.partition_keys:
            series, year, month = split_venue_key(key)
            if not _month_started(year, month, now):
                done.append((key, None))
                continue
            if series.key not in pagers:
                symbol = from_series(series)
                exchange = venues.exchange(symbol.venue)
                check_listed(exchange, symbol, series.interval)
                pagers[series.key] = Pager(exchange, symbol, series.interval)
            result = fetch_month(
                pagers[series.key], year, month, layout=layout, now=now, force=config.force
            )
            done.append((key, result))
    except (VenueFetchError, UserInputError) as exc:
        raise dg.Failure(description=str(exc)) from exc
    results = [r for _, r in done if r is not None]
    metadata: dict[str, dg.RawMetadataValue] = {
        "partitions": len(done),
        "requests": sum(p.requests for p in pagers.values()),
        "retries": sum(p.retries for p in pagers.values()),
    }
    add_month_metadata(context, {k: venue_month_metadata(r) for k, r in done})
    context.log.info(
        f"{len(done)} month(s): {sum(r.status == 'written' for r in results)} written, "
        f"{sum(r.status in ('unchanged', 'complete') for r in results)} unchanged"
    )
    return dg.MaterializeResult(metadata=metadata)


def venue_month_metadata(r: MonthResult | None) -> dict[str, Any]:
    """One venue month as a run (or ``venue fetch``) reports it."""
    if r is None:
        return {"status": "not started", "rows": 0, "complete": False}
    metadata: dict[str, Any] = {
        "status": r.status,
        "rows": r.rows,
        "gaps": r.gaps,
        "missing_bars": r.missing_bars,
        "complete": r.complete,
    }
    if r.path is not None:
        metadata["parquet_path"] = dg.MetadataValue.path(str(r.path))
        metadata["sha256"] = r.sha256 or ""
    if r.first_open_time is not None and r.last_open_time is not None:
        metadata["first_bar"] = dg.MetadataValue.timestamp(r.first_open_time)
        metadata["last_bar"] = dg.MetadataValue.timestamp(r.last_open_time)
    return metadata


# ---------------------------------------------------------------- the basis


class BasisConfig(dg.Config):
    """Which two markets to compare; quotes that differ must be accepted here, by name."""

    a: str = Field(
        default="binance:BTCUSDT",
        description="VENUE:SYMBOL; Binance reads its Vision history (market=spot)",
    )
    b: str = Field(default="coinbase:BTC-USD", description="VENUE:SYMBOL of the other venue")
    interval: str = Field(default="1h", description="bar interval compared")
    equate_quotes: str = Field(
        default="USDT=USD",
        description='quotes this comparison accepts as equal, "A=B" ("" accepts none): USDT '
        "is not USD, so comparing Binance BTC/USDT with Coinbase BTC/USD has to say so here",
    )
    start: str | None = Field(default=None, description="first day, YYYY-MM-DD (inclusive)")
    end: str | None = Field(default=None, description="last day, YYYY-MM-DD (inclusive)")


def parse_market(text: str) -> VenueSymbol:
    """``"coinbase:BTC-USD"`` → the venue symbol (a one-line ``UserInputError`` otherwise)."""
    venue, sep, symbol = text.partition(":")
    if not sep:
        raise UserInputError(f"market {text!r} must be VENUE:SYMBOL, e.g. coinbase:BTC-USD")
    return parse_symbol(venue, symbol)


def _quote_pairs(text: str) -> list[tuple[str, str]]:
    if not text.strip():
        return []
    left, sep, right = text.upper().partition("=")
    if not sep or not left.strip() or not right.strip():
        raise UserInputError(f"equate_quotes must be QUOTE=QUOTE (e.g. USDT=USD), got {text!r}")
    return [(left.strip(), right.strip())]


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def basis_path(basis_dir: Path, a: VenueSymbol, b: VenueSymbol, interval: str) -> Path:
    """``<DataLayout.venue_basis_dir>/<series a>__<series b>.parquet``."""
    return basis_dir / f"{a.series(interval).key}__{b.series(interval).key}.parquet"


@dg.asset(
    key_prefix=KEY_PREFIX,
    # venue a is Binance's Vision history (history/klines, market=spot), venue b a ccxt venue
    deps=[venue_candles, klines],
    group_name=GROUP,
    kinds={"polars", "parquet"},
    code_version=source_version(__name__, "trading_pipeline.market.align"),
    owners=OWNERS,
)
def venue_basis(
    context: dg.AssetExecutionContext, config: BasisConfig, lake: DataLake
) -> dg.MaterializeResult:
    """Per-bar basis between two venues on the hours both have, and how wide it was."""
    try:
        a, b = parse_market(config.a), parse_market(config.b)
        require_equivalent(a, b, allow=_quote_pairs(config.equate_quotes))
        frames = [
            load_store(
                lake.layout.history_dir,
                market=s.series(config.interval).market,
                symbol=s.store_symbol,
                interval=config.interval,
                start=_day(config.start),
                end=_day(config.end),
            )
            for s in (a, b)
        ]
    except (UserInputError, CandleError, ValueError) as exc:
        raise dg.Failure(description=str(exc)) from exc
    aligned = align_venues(frames[0], frames[1], interval=config.interval)
    report = alignment_report(frames[0], frames[1], interval=config.interval, aligned=aligned)
    out = aligned.join(basis(aligned), on="open_time", how="left")
    path = basis_path(lake.layout.venue_basis_dir, a, b, config.interval)
    with atomic_path(path) as tmp:
        out.write_parquet(tmp, compression="zstd", statistics=True)
    quotes = quote_difference(a, b)
    context.log.info(f"{a} vs {b}: {report.overlap} overlapping bars")
    metadata: dict[str, dg.RawMetadataValue] = {
        "a": str(a),
        "b": str(b),
        "quote_difference": (
            f"{quotes}: the basis includes the {a.quote}/{b.quote} rate" if quotes else "none"
        ),
        "overlap_bars": report.overlap,
        "excluded_a_only": report.a_only,
        "excluded_b_only": report.b_only,
        "excluded_in_span": report.a_only_in_span + report.b_only_in_span,
        "excluded_off_grid": report.a_off_grid + report.b_off_grid,
        "median_abs_basis_bps": report.median_abs_basis_bps,
        "p99_abs_basis_bps": report.p99_abs_basis_bps,
        "max_abs_basis_bps": report.max_abs_basis_bps,
        "mean_basis_bps": report.mean_basis_bps,
        "path": dg.MetadataValue.path(str(path)),
        "sha256": sha256_file(path),
    }
    if report.first is not None and report.last is not None:
        metadata["first_bar"] = dg.MetadataValue.timestamp(report.first.astimezone(UTC))
        metadata["last_bar"] = dg.MetadataValue.timestamp(report.last.astimezone(UTC))
    return dg.MaterializeResult(metadata=tidy(metadata))


def read_basis(path: str | Path) -> pl.DataFrame:
    """The basis file the asset wrote: the aligned bars (``open_time, a_open … a_volume,
    b_open … b_volume``) with ``basis_bps, log_basis_bps``."""
    return pl.read_parquet(path)
