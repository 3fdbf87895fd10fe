"""How the live broker speaks to Coinbase Advanced Trade through ccxt's ``coinbase`` class.

The guarantees stay in :class:`~trading_pipeline.bots.ccxt_broker.CcxtBroker`; this adapter says
how Coinbase spells them (checked against ccxt 4.5's ``coinbase.py`` and the Advanced Trade
REST reference):

- **Client order id**: ``client_order_id`` in the ``POST /api/v3/brokerage/orders`` body. ccxt
  would generate ``ccxt-<uuid>`` and drops a ``clientOrderId`` param, so ours goes in as
  ``params={"client_order_id": …}``, which overrides its own.
- **Lookup before resend**: ccxt cannot fetch an order by client id (``fetch_order`` needs the
  venue's ``order_id``), so :meth:`CoinbaseVenue.find` lists the product's orders
  (``GET /api/v3/brokerage/orders/historical/batch?product_ids=…&limit=…&cursor=…``, newest
  first) and matches ``client_order_id``; it pages until the list ends and refuses to say "never
  placed" when it had to stop early.
- **Market orders**: ``market_market_ioc``; a sell gives ``base_size`` (cut to
  ``base_increment``), a buy gives ``quote_size`` = quantity × the last price, truncated by
  ccxt's ``cost_to_precision`` (the product's price increment; Coinbase documents quote-sized
  market buys), so the base
  bought is the quote spent less the fee, at the fill price. The create answer carries only the
  ids: the fill (``filled_size``, ``average_filled_price``, ``total_fees`` in the quote) is read
  with ``GET /api/v3/brokerage/orders/historical/{order_id}``.
- **Refusals**: a create answered ``"success": false`` placed nothing: insufficient funds comes
  back from ccxt as ``InsufficientFunds``, every other failure reason is made an
  ``InvalidOrder`` (final, never retried).
- **Stops**: Coinbase offers stop-*limit* orders only, no stop-market; the broker refuses a
  protective stop on Coinbase (bot4, the only Coinbase bot, trades pairs and places none).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import ccxt

_NOT_CREATED = re.compile(r'"success"\s*:\s*false|"error_response"')


def _settled_or_open(order: dict[str, Any]) -> dict[str, Any]:
    """ccxt passes Coinbase's in-between states through (``PENDING``, ``QUEUED``,
    ``CANCEL_QUEUED``, ``UNKNOWN_ORDER_STATUS``): for the broker they are ``open`` (asked again),
    never a final "nothing filled"."""
    if order.get("status") in ("open", "closed", "canceled"):
        return order
    return {**order, "status": "open"}


class LookupIncomplete(ccxt.ExchangeError):
    """The order list was not read to its end: a missing id proves nothing (never re-send)."""


class CoinbaseVenue:
    """The Coinbase Advanced Trade spelling of the broker's calls (stateless)."""

    name = "coinbase"
    supports_stops = False
    buys_in_quote = True  # market buys sized in quote (at the last price)
    page_limit = 250
    max_pages = 40

    def create_market(
        self,
        exchange: ccxt.Exchange,
        market: Mapping[str, Any],
        side: str,
        amount: float,
        client_order_id: str,
        price: float | None,
    ) -> dict[str, Any]:
        """Place a market IOC order: sell ``amount`` base units, or buy ``amount × price`` worth."""
        params: dict[str, Any] = {"client_order_id": client_order_id}
        if side == "buy":
            if not price or not price > 0:
                raise ccxt.InvalidOrder("coinbase: a market buy is sized in quote; no price known")
            params["cost"] = amount * float(price)
        try:
            return exchange.create_order(market["symbol"], "market", side, amount, None, params)
        except (ccxt.NetworkError, ccxt.AuthenticationError, ccxt.InsufficientFunds):
            raise
        except ccxt.ExchangeError as exc:
            if _NOT_CREATED.search(str(exc)):  # an answer that says nothing was placed
                raise ccxt.InvalidOrder(str(exc)) from None
            raise

    def complete(
        self, exchange: ccxt.Exchange, market: Mapping[str, Any], order: dict[str, Any]
    ) -> dict[str, Any]:
        """The full order behind a create answer (which holds only the ids). An order the venue
        does not show yet stays ``open``: its fate is asked again later, never assumed."""
        if order.get("status") is not None or order.get("id") is None:
            return _settled_or_open(order)
        try:
            full = exchange.fetch_order(str(order["id"]), market["symbol"])
        except (ccxt.NetworkError, ccxt.AuthenticationError):
            raise
        except ccxt.ExchangeError:  # placed, but not listed yet
            return {**order, "status": "open"}
        return _settled_or_open(full)

    def find(
        self, exchange: ccxt.Exchange, market: Mapping[str, Any], client_order_id: str
    ) -> dict[str, Any] | None:
        """The order placed under ``client_order_id``, or None when the whole list lacks it."""
        cursor = ""
        for _ in range(self.max_pages):
            request: dict[str, Any] = {"product_ids": market["id"], "limit": self.page_limit}
            if cursor:
                request["cursor"] = cursor
            page = exchange.v3PrivateGetBrokerageOrdersHistoricalBatch(request)
            for raw in page.get("orders") or []:
                if raw.get("client_order_id") == client_order_id:
                    return _settled_or_open(exchange.parse_order(raw, market))
            cursor = str(page.get("cursor") or "")
            if not page.get("has_next") or not cursor:
                return None
        raise LookupIncomplete(
            f"coinbase: {client_order_id} not in the newest "
            f"{self.max_pages * self.page_limit} orders of {market['id']}; cannot rule it out"
        )

    def cancel(
        self, exchange: ccxt.Exchange, market: Mapping[str, Any], client_order_id: str
    ) -> dict[str, Any] | None:
        """Cancel the open order ``client_order_id`` (batch_cancel by its order id); None when
        there is no open order under it."""
        order = self.find(exchange, market, client_order_id)
        if order is None or order.get("status") != "open":
            return None
        exchange.cancel_order(str(order["id"]), market["symbol"])
        return exchange.fetch_order(str(order["id"]), market["symbol"])

    def create_stop(
        self,
        exchange: ccxt.Exchange,
        market: Mapping[str, Any],
        amount: float,
        stop: float,
        client_order_id: str,
    ) -> dict[str, Any]:
        raise ccxt.InvalidOrder("coinbase offers no stop-market order (stop-limit only)")

    def trade_fees(
        self, exchange: ccxt.Exchange, market: Mapping[str, Any], order_id: str
    ) -> list[dict[str, Any]]:
        """Coinbase orders carry their fees (``total_fees``): nothing more to read."""
        return []

    def is_duplicate(self, exc: BaseException) -> bool:
        return False
