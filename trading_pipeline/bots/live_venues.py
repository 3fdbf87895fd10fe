"""The live order path of one bot: a ccxt broker per venue it trades, and their candles.

A one-venue bot gets its :class:`~trading_pipeline.bots.ccxt_broker.CcxtBroker` and candles
from the same exchange. bot4 (Binance US × Coinbase) gets a
:class:`~trading_pipeline.bots.routing.RoutingBroker` over one broker per venue, each with its
own keys (``TP_BINANCEUS_API_KEY``…, ``TP_COINBASE_API_KEY``…) and its own balances — nothing
moves between venues, so each leg trades within what its venue holds — and candles asked of
each venue by its own ids (``BTCUSDT``, ``BTC-USD``). Every broker refuses its venue's real URL
unless ``live`` is set (``bot run --live``); a venue pointed at a local URL is never live.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trading_pipeline.bots.candles import ExchangeCandles, VenueCandles
from trading_pipeline.bots.ccxt_broker import CcxtBroker, Credentials
from trading_pipeline.bots.routing import RoutingBroker, is_qualified, venue_symbol
from trading_pipeline.retrying import RetryPolicy


def connect_live(
    venues: Sequence[str],
    symbols: Sequence[str],
    credentials: Mapping[str, Credentials],
    urls: Mapping[str, str | None],
    *,
    live: bool = False,
    timeout_ms: int = 10000,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Any, Any]:
    """``(broker, candles)`` for a bot trading ``symbols`` on ``venues``."""
    brokers = {
        v: CcxtBroker.connect(
            v,
            credentials[v],
            base_url=urls.get(v),
            live=live,
            timeout_ms=timeout_ms,
            retry=retry,
            sleep=sleep,
        )
        for v in venues
    }
    if len(brokers) == 1:
        only = next(iter(brokers.values()))
        return only, ExchangeCandles(only.exchange)
    quotes = {venue_symbol(s).venue: venue_symbol(s).quote for s in symbols if is_qualified(s)}
    broker = RoutingBroker(brokers, quotes=quotes, native_ids=True)
    candles = VenueCandles({v: ExchangeCandles(b.exchange) for v, b in brokers.items()})
    return broker, candles
