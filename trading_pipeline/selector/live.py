"""Candles for a decision at ``now``: closed bars only, from the store and (live) the exchange.

A decision at ``now`` may use a bar only once it has closed: ``open_time + interval <= now``.
The Parquet store holds history up to yesterday (Binance Vision publishes daily); the hours
since come from the exchange through ccxt ``fetch_ohlcv``. :class:`LiveCandles` merges both on
``open_time`` (the store wins where both have a bar: it is the published archive) and drops
the candle that is still open. :class:`StoreCandles` reads the store only, for
``select --at`` replays and audits, so a past decision can be recomputed exactly.

Both implement :class:`CandleSource`; the exchange is passed in (see
``venues.exchange.make_exchange``), so tests point it at a local fake server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from trading_pipeline.history.layout import Series
from trading_pipeline.market.candles import CandleError, load_store
from trading_pipeline.market.schema import INTERVAL_MS, KLINE_SCHEMA

KLINES_PAGE = 1000  # Binance's maximum klines per request


class CandleFetchError(RuntimeError):
    """The exchange did not give the candles a decision needs (network, rate limit, unknown pair)."""


class CandleSource(Protocol):
    """Closed candles of each series key (``spot-BTCUSDT-1h``), the last ``lookback`` of them."""

    def bars(
        self, series: Sequence[str], *, now: datetime, lookback: int
    ) -> dict[str, pl.DataFrame]: ...


def interval_delta(interval: str) -> timedelta:
    if interval not in INTERVAL_MS:
        raise CandleError(f"unknown interval {interval!r}")
    return timedelta(milliseconds=INTERVAL_MS[interval])


def closed_bars(df: pl.DataFrame, *, now: datetime, interval: str) -> pl.DataFrame:
    """The bars of ``df`` that have closed by ``now`` (``open_time + interval <= now``)."""
    cutoff = now.astimezone(UTC) - interval_delta(interval)
    return df.filter(pl.col("open_time") <= cutoff)


def _bars(
    source: StoreCandles | LiveCandles,
    series: Sequence[str],
    *,
    now: datetime,
    lookback: int,
    error: type[Exception],
    where: str = "",
) -> dict[str, pl.DataFrame]:
    """Each series' closed bars from ``source``; a series without any is ``error``."""
    out = {}
    for key in series:
        df = source.series_bars(key, now=now, lookback=lookback)
        if df.height == 0:
            raise error(f"no closed {key} bars{where} before {now.isoformat()}")
        out[key] = df
    return out


class StoreCandles:
    """Closed bars from the Parquet history store only (deterministic for a given ``now``)."""

    def __init__(self, history_dir: str | Path):
        self.history_dir = Path(history_dir)

    def series_bars(self, key: str, *, now: datetime, lookback: int) -> pl.DataFrame:
        s = Series.parse(key)
        start = now.astimezone(UTC) - interval_delta(s.interval) * (lookback + 1)
        try:
            df = load_store(
                self.history_dir,
                market=s.market,
                symbol=s.symbol,
                interval=s.interval,
                start=start,
                end=now.astimezone(UTC),
            )
        except CandleError as exc:
            raise CandleError(
                f"no closed {key} bars in the store before {now.isoformat()}: {exc}"
            ) from None
        return closed_bars(df, now=now, interval=s.interval).tail(lookback)

    def bars(
        self, series: Sequence[str], *, now: datetime, lookback: int
    ) -> dict[str, pl.DataFrame]:
        return _bars(
            self, series, now=now, lookback=lookback, error=CandleError, where=" in the store"
        )


class LiveCandles:
    """Store bars plus the latest closed candles from the exchange (ccxt ``fetch_ohlcv``)."""

    def __init__(
        self,
        exchange: Any,
        *,
        store: StoreCandles | None = None,
        page: int = KLINES_PAGE,
        attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.exchange = exchange
        self.store = store
        self.page = page
        self.attempts = attempts
        self.sleep = sleep

    def fetch(self, key: str, *, since: datetime, now: datetime) -> pl.DataFrame:
        """Closed candles of ``key`` opened from ``since`` on, as of ``now`` (canonical schema).

        Paged and retried (rate limits, network errors) by the venue fetcher's ``Pager``; a
        tick must not wait minutes, so the back-off is short.
        """
        from trading_pipeline.venues.exchange import RetryPolicy
        from trading_pipeline.venues.ohlcv import Pager, VenueFetchError, to_frame
        from trading_pipeline.venues.symbols import from_series

        s = Series.parse(key)
        step_ms = INTERVAL_MS[s.interval]
        pager = Pager(
            self.exchange,
            from_series(s),
            s.interval,
            limit=self.page,
            sleep=self.sleep,
            retry=RetryPolicy(attempts=self.attempts, base_s=0.5, max_s=5.0),
        )
        start_ms = int(since.timestamp() * 1000)
        end_ms = int(now.timestamp() * 1000) - step_ms + 1  # opened by then and closed by now
        if start_ms >= end_ms:
            return pl.DataFrame(schema=KLINE_SCHEMA)
        try:
            rows = pager.fetch(start_ms, end_ms)
        except VenueFetchError as exc:
            raise CandleFetchError(f"{self.exchange.id} klines: {exc}") from exc
        if not rows:
            return pl.DataFrame(schema=KLINE_SCHEMA)
        step = pl.duration(milliseconds=step_ms) - pl.duration(microseconds=1)
        return to_frame(rows).with_columns((pl.col("open_time") + step).alias("close_time"))

    def series_bars(self, key: str, *, now: datetime, lookback: int) -> pl.DataFrame:
        s = Series.parse(key)
        step = interval_delta(s.interval)
        stored = pl.DataFrame(schema=KLINE_SCHEMA)
        if self.store is not None:
            try:
                stored = self.store.series_bars(key, now=now, lookback=lookback)
            except CandleError:
                stored = pl.DataFrame(schema=KLINE_SCHEMA)  # no history yet: the exchange only
        if stored.height:
            since = stored.get_column("open_time")[-1] + step
        else:
            since = now.astimezone(UTC) - step * (lookback + 1)
        fresh = self.fetch(key, since=since, now=now)
        merged = (
            pl.concat([stored, fresh], how="vertical")
            .unique("open_time", keep="first", maintain_order=True)
            .sort("open_time")
        )
        return closed_bars(merged, now=now, interval=s.interval).tail(lookback)

    def bars(
        self, series: Sequence[str], *, now: datetime, lookback: int
    ) -> dict[str, pl.DataFrame]:
        return _bars(self, series, now=now, lookback=lookback, error=CandleFetchError)
