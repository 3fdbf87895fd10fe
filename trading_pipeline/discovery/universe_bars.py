"""A universe's frame from the history store, named by its series key and read back from it.

The universe of USDT-quoted symbols ``BTCUSDT, ETHUSDT, BNBUSDT`` of one market and interval is
the series ``universe-BTC+ETH+BNB-1h`` (:func:`~trading_pipeline.strategies.universe.universe_key`);
its frame joins the coins' stored bars on open time. The key alone finds the bars again, so the
catalog re-collects a portfolio study like any single-series one.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from trading_pipeline.errors import UserInputError
from trading_pipeline.history.layout import Series
from trading_pipeline.market.candles import CandleError, load_store
from trading_pipeline.strategies.universe import universe_frame, universe_key

QUOTE = "USDT"
PREFIX = "universe-"
MARKET = "spot"  # a universe key names no market: its coins are spot series


def universe_series(
    symbols: list[str] | tuple[str, ...], *, market: str, interval: str
) -> tuple[str, dict[str, Series]]:
    """The universe's series key and, per coin, its kline series."""
    if market != MARKET:
        raise UserInputError(f"a universe is of {MARKET} series, not {market}")
    bad = [s for s in symbols if not s.endswith(QUOTE) or s == QUOTE]
    if bad:
        raise UserInputError(f"a universe's symbols are {QUOTE}-quoted; {bad[0]} is not")
    coins = {s[: -len(QUOTE)]: Series(market, s, interval) for s in symbols}
    if len(coins) < 2:
        raise UserInputError(f"a universe needs at least two coins, got {len(coins)}")
    return universe_key(list(coins), interval), coins


def is_universe_key(key: str) -> bool:
    return key.startswith(PREFIX)


def series_of_key(key: str) -> dict[str, Series]:
    """``universe-BTC+ETH-1h`` → {BTC: spot-BTCUSDT-1h, ETH: spot-ETHUSDT-1h}."""
    body = key[len(PREFIX) :] if is_universe_key(key) else ""
    coins, _, interval = body.rpartition("-")
    names = coins.split("+") if coins else []
    if len(names) < 2 or not all(names) or not interval:
        raise UserInputError(f"not a universe series key: {key!r}")
    return {c: Series(MARKET, f"{c}{QUOTE}", interval) for c in names}


def load_universe(history_dir: str | Path, key: str) -> pl.DataFrame:
    """The universe frame of series ``key`` from the stored klines (UserInputError when a coin
    has no bars or the coins share no open time)."""
    bars = {}
    for coin, series in series_of_key(key).items():
        try:
            bars[coin] = load_store(
                history_dir,
                market=series.market,
                symbol=series.symbol,
                interval=series.interval,
            )
        except CandleError as exc:
            raise UserInputError(f"{series.key}: {exc}") from exc
    return universe_frame(bars)
