"""How the live broker speaks to Binance (and Binance US) through ccxt: the venue-specific calls.

:class:`~trading_pipeline.bots.ccxt_broker.CcxtBroker` keeps the guarantees (lookup before
resend, limits, retries, redaction); this adapter only says how Binance spells them:

- the client order id goes out as ``newClientOrderId`` and orders are looked up and cancelled by
  it (``origClientOrderId``); Binance only refuses a duplicate id among *open* orders
  (``-2010 Duplicate order sent``), so the broker looks up before sending;
- a market order's answer (``newOrderRespType=FULL``) carries its fills, so it is final;
- protective stops are ``STOP_LOSS`` sell orders (stop-market);
- fees missing from an order are read from its trades (``myTrades?orderId=``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ccxt


class BinanceVenue:
    """The Binance spelling of the broker's calls (stateless)."""

    name = "binance"
    supports_stops = True
    buys_in_quote = False  # market buys sized in quote (at the last price)

    def create_market(
        self,
        exchange: ccxt.Exchange,
        market: Mapping[str, Any],
        side: str,
        amount: float,
        client_order_id: str,
        price: float | None,
    ) -> dict[str, Any]:
        """Place a market order of ``amount`` base units (``price`` unused: Binance sizes buys in
        base units too)."""
        return exchange.create_order(
            market["symbol"],
            "market",
            side,
            amount,
            params={"newClientOrderId": client_order_id},
        )

    def complete(
        self, exchange: ccxt.Exchange, market: Mapping[str, Any], order: dict[str, Any]
    ) -> dict[str, Any]:
        """The order's final state: Binance's FULL answer already is."""
        return order

    def find(
        self, exchange: ccxt.Exchange, market: Mapping[str, Any], client_order_id: str
    ) -> dict[str, Any] | None:
        """The order placed under ``client_order_id`` (None when Binance never saw it)."""
        try:
            return exchange.fetch_order(
                None, market["symbol"], params={"origClientOrderId": client_order_id}
            )
        except ccxt.OrderNotFound:
            return None

    def cancel(
        self, exchange: ccxt.Exchange, market: Mapping[str, Any], client_order_id: str
    ) -> dict[str, Any] | None:
        """Cancel the resting order ``client_order_id``; None when there is none to cancel."""
        try:
            return exchange.cancel_order(
                None, market["symbol"], params={"origClientOrderId": client_order_id}
            )
        except ccxt.OrderNotFound:  # filled, cancelled already, or never placed
            return None

    def create_stop(
        self,
        exchange: ccxt.Exchange,
        market: Mapping[str, Any],
        amount: float,
        stop: float,
        client_order_id: str,
    ) -> dict[str, Any]:
        """A resting ``STOP_LOSS`` sell (stop-market) of ``amount`` at ``stop``."""
        return exchange.create_order(
            market["symbol"],
            "STOP_LOSS",
            "sell",
            amount,
            None,
            params={"stopPrice": stop, "newClientOrderId": client_order_id},
        )

    def trade_fees(
        self, exchange: ccxt.Exchange, market: Mapping[str, Any], order_id: str
    ) -> list[dict[str, Any]]:
        """The fees of an order's trades (Binance's order answers omit them after the fact)."""
        trades = exchange.fetch_my_trades(market["symbol"], params={"orderId": order_id})
        return [t["fee"] for t in trades if t.get("fee") and t["fee"].get("cost") is not None]

    def is_duplicate(self, exc: BaseException) -> bool:
        """Binance's refusal of an id that is open already (that order counts)."""
        return "Duplicate order" in str(exc)
