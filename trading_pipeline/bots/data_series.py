"""The history series the chain keeps: the configured universe and every bot's own series.

Each bot of the fleet trades its symbols at its bar interval, so the chain must fetch, feature,
tune and select on exactly those series (bot2: ten coins at 5 minutes; bot3: the same ten at
1 hour). :func:`fleet_series` lists them; :func:`series_in_force` is the union with the
configured universe (``TP_UNIVERSE`` × ``TP_INTERVAL``), configured series first, without
duplicates. Venue-qualified symbols (bot4's ``binanceus:BTCUSDT``, ``coinbase:BTCUSD``) are
venue candles fetched by the venues assets, not Binance Vision history, and are left out.
:func:`families_for_series` says which strategy families the bots trading a series may run
(what discovery tunes on it). Nothing here reads the environment or a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from trading_pipeline.bots.fleet_file import BotSpec
from trading_pipeline.history.layout import Series


def fleet_series(bots: Iterable[BotSpec], market: str = "spot") -> list[Series]:
    """Every (symbol, interval) a bot of ``bots`` trades on Binance Vision, in fleet order."""
    out: list[Series] = []
    for bot in bots:
        for symbol in bot.symbols:
            if ":" in symbol:  # venue-qualified: venue candles, not Vision history
                continue
            s = Series(market, symbol.strip().upper(), bot.interval)
            if s not in out:
                out.append(s)
    return out


def series_in_force(
    universe: Sequence[str],
    interval: str,
    *,
    market: str = "spot",
    bots: Iterable[BotSpec] = (),
) -> list[Series]:
    """The configured universe at ``interval``, then every bot's series not already in it."""
    out = [Series(market, s.strip().upper(), interval) for s in universe]
    for s in fleet_series(bots, market):
        if s not in out:
            out.append(s)
    return out


def bots_trading(series: Series, bots: Iterable[BotSpec]) -> list[BotSpec]:
    """The bots whose symbols include ``series``' symbol at ``series``' interval."""
    return [b for b in bots if b.interval == series.interval and series.symbol in b.symbols]


def families_for_series(
    series: Series, bots: Iterable[BotSpec], tunable: Iterable[str]
) -> tuple[str, ...]:
    """The ``tunable`` families some bot trading ``series`` may run (fleet order, no repeats)."""
    allowed = set(tunable)
    out: list[str] = []
    for bot in bots_trading(series, bots):
        out.extend(f for f in bot.families if f in allowed and f not in out)
    return tuple(out)


__all__ = ["bots_trading", "families_for_series", "fleet_series", "series_in_force"]
