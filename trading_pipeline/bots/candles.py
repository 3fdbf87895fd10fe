"""Where a runner gets its bars and prices: history (store or frames) for replays, an exchange
for live bots, behind one small protocol.

Two questions only, both causal: "the last ``n`` bars that had CLOSED by ``now``" and "the
price at ``now``" (the open of the bar starting at ``now`` in a replay — the price the next
market order gets, exactly what the backtester fills at — or the ticker when live).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from trading_pipeline.bots.clock import to_ms
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import INTERVAL_MS, KLINE_SCHEMA, UTC_US, conform


class CandleSource(Protocol):
    """Bars and prices for a runner (``interval`` is one of market.schema.INTERVAL_MS)."""

    def closed_bars(self, symbol: str, interval: str, now_ms: int, n: int) -> pl.DataFrame:
        """The last ``n`` bars whose close (open_time + interval) is at or before ``now_ms``."""
        ...

    def price(self, symbol: str, interval: str, now_ms: int) -> float | None:
        """The price a market order placed at ``now_ms`` trades at (before costs); None if
        unknown (e.g. a replay past its last bar)."""
        ...

    def next_close_ms(self, interval: str, now_ms: int) -> int | None:
        """When the next bar closes after ``now_ms`` (None: no more bars, replay over)."""
        ...


def bar_ms(interval: str) -> int:
    if interval not in INTERVAL_MS:
        raise UserInputError(f"unknown interval {interval!r}; known: {', '.join(INTERVAL_MS)}")
    return INTERVAL_MS[interval]


class FrameCandles:
    """Replay source over in-memory frames (canonical kline schema), one per symbol.

    ``end_ms`` hides every bar opening at or after it, so a replay ``--to`` cannot trade on the
    bar beyond its range (the backtester drops an order pending at its last bar the same way).
    """

    def __init__(self, frames: Mapping[str, pl.DataFrame], *, end_ms: int | None = None) -> None:
        self._frames: dict[str, pl.DataFrame] = {}
        self._times: dict[str, np.ndarray] = {}
        self._opens: dict[str, np.ndarray] = {}
        for symbol, df in frames.items():
            df = df.sort("open_time")
            t = df["open_time"].dt.epoch("ms").to_numpy().astype(np.int64)
            if end_ms is not None:
                keep = int(np.searchsorted(t, end_ms, side="left"))
                df, t = df.head(keep), t[:keep]
            self._frames[symbol] = df
            self._times[symbol] = t
            self._opens[symbol] = df["open"].to_numpy().astype(np.float64)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._frames)

    def frame(self, symbol: str) -> pl.DataFrame:
        return self._get(symbol)

    def _get(self, symbol: str) -> pl.DataFrame:
        try:
            return self._frames[symbol]
        except KeyError:
            raise UserInputError(f"no candles for {symbol}") from None

    def closed_bars(self, symbol: str, interval: str, now_ms: int, n: int) -> pl.DataFrame:
        df = self._get(symbol)
        k = int(np.searchsorted(self._times[symbol], now_ms - bar_ms(interval), side="right"))
        return df.slice(max(0, k - n), min(n, k))

    def price(self, symbol: str, interval: str, now_ms: int) -> float | None:
        t = self._times[symbol]
        k = int(np.searchsorted(t, now_ms, side="left"))
        if k < t.shape[0] and t[k] == now_ms:
            return float(self._opens[symbol][k])
        return None

    def next_close_ms(self, interval: str, now_ms: int) -> int | None:
        step = bar_ms(interval)
        best: int | None = None
        for t in self._times.values():
            k = int(np.searchsorted(t, now_ms - step, side="right"))
            if k < t.shape[0]:
                c = int(t[k]) + step
                best = c if best is None else min(best, c)
        return best


def load_frames(
    history_dir: str | Path,
    *,
    market: str,
    symbols: Sequence[str],
    interval: str,
    start: datetime,
    end: datetime,
    warmup_bars: int,
) -> dict[str, pl.DataFrame]:
    """Bars of each symbol from the Parquet store, from ``warmup_bars`` before ``start`` to
    ``end``; a missing series is a :class:`UserInputError`.

    A venue-qualified symbol (``coinbase:BTCUSD``, bots/routing.py) is read from that venue's
    store market (``market=coinbase``, venues.symbols.STORE_MARKET) whatever ``market`` says;
    the frame keeps the qualified name."""
    from trading_pipeline.bots.routing import is_qualified, venue_symbol
    from trading_pipeline.market.candles import CandleError, load_store

    pad = bar_ms(interval) * (warmup_bars + 2)
    out: dict[str, pl.DataFrame] = {}
    for symbol in symbols:
        where, name = market, symbol
        if is_qualified(symbol):
            vs = venue_symbol(symbol)
            where, name = vs.store_market, vs.store_symbol
        try:
            df = load_store(history_dir, market=where, symbol=name, interval=interval)
        except CandleError as exc:
            raise UserInputError(str(exc)) from None
        lo = to_ms(start) - pad
        ms = pl.col("open_time").dt.epoch("ms")
        out[symbol] = df.filter((ms >= lo) & (ms < to_ms(end)))
    return out


class VenueCandles:
    """One candle source per venue behind one (live bot4): ``coinbase:BTCUSD`` (bots/routing.py
    symbols) is asked of the coinbase source by the venue's own id, ``BTC-USD`` — what
    :class:`ExchangeCandles` looks markets up by. ``next_close_ms`` is the earliest over the
    venues. (Replays need none of this: their frames are keyed by the qualified names.)"""

    def __init__(self, sources: Mapping[str, CandleSource]) -> None:
        if not sources:
            raise UserInputError("venue candles need at least one venue")
        self.sources = dict(sources)

    def _route(self, symbol: str) -> tuple[CandleSource, str]:
        from trading_pipeline.bots.routing import venue_symbol

        vs = venue_symbol(symbol)
        if vs.venue not in self.sources:
            raise UserInputError(
                f"no candles for venue {vs.venue} (have {', '.join(self.sources)})"
            )
        return self.sources[vs.venue], vs.native_id

    def closed_bars(self, symbol: str, interval: str, now_ms: int, n: int) -> pl.DataFrame:
        src, native = self._route(symbol)
        return src.closed_bars(native, interval, now_ms, n)

    def price(self, symbol: str, interval: str, now_ms: int) -> float | None:
        src, native = self._route(symbol)
        return src.price(native, interval, now_ms)

    def next_close_ms(self, interval: str, now_ms: int) -> int | None:
        times = [t for s in self.sources.values() if (t := s.next_close_ms(interval, now_ms))]
        return min(times) if times else None


class ExchangeCandles:
    """Live source over a ccxt exchange (public endpoints only): closed klines and the ticker."""

    def __init__(self, exchange: Any) -> None:
        self.exchange = exchange

    def _market(self, symbol: str) -> str:
        ex = self.exchange
        if not getattr(ex, "markets", None):
            ex.load_markets()
        for m in ex.markets.values():
            if m.get("id") == symbol:
                return str(m["symbol"])
        raise UserInputError(f"{symbol} is not a market on {ex.id}")

    def closed_bars(self, symbol: str, interval: str, now_ms: int, n: int) -> pl.DataFrame:
        rows = self.exchange.fetch_ohlcv(self._market(symbol), interval, limit=min(n + 1, 1000))
        step = bar_ms(interval)
        rows = [r for r in rows if int(r[0]) + step <= now_ms][-n:]
        df = pl.DataFrame(
            {
                "open_time": pl.Series([int(r[0]) for r in rows], dtype=pl.Int64),
                **{
                    k: pl.Series([float(r[i]) for r in rows], dtype=pl.Float64)
                    for i, k in enumerate(("open", "high", "low", "close", "volume"), start=1)
                },
            }
        ).with_columns(pl.from_epoch("open_time", "ms").cast(UTC_US))
        return conform(df) if df.height else pl.DataFrame(schema=KLINE_SCHEMA)

    def price(self, symbol: str, interval: str, now_ms: int) -> float | None:
        ticker = self.exchange.fetch_ticker(self._market(symbol))
        last = ticker.get("last") or ticker.get("close")
        return float(last) if last else None

    def next_close_ms(self, interval: str, now_ms: int) -> int | None:
        step = bar_ms(interval)
        return (now_ms // step + 1) * step + 1_000  # a second after the close: let it settle
