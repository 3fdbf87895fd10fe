"""The one interface between a bot's runner and whatever executes its orders.

The runner never knows whether it talks to the paper broker (bots/paper.py) or to a real
exchange through ccxt (bots/ccxt_broker.py): both implement :class:`Broker`. The contract that
keeps money safe lives here:

- orders carry a deterministic client order id (:func:`client_order_id`), so a restarted runner
  asks for the same id again instead of inventing a new order;
- ``submit`` is idempotent: the same client order id twice returns the first result and never
  places a second order;
- ``fetch_order`` lets a restarted runner learn what became of an order it sent but never
  recorded as filled, instead of re-sending it blindly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from trading_pipeline.errors import UserInputError

Side = Literal["buy", "sell"]
OrderStatus = Literal["filled", "rejected", "open", "canceled"]

MAX_CLIENT_ORDER_ID = 36  # Binance's limit for newClientOrderId


class CredentialsRefused(UserInputError):
    """The venue refused the API key (Binance ``-2015``, ccxt ``AuthenticationError`` /
    ``PermissionDenied``): the runner halts at once and sends nothing more (one ``error:``
    line at the command line, exit 2)."""


@dataclass(frozen=True)
class MarketRules:
    """A venue's limits for one symbol: the lot step, the minimum quantity and the minimum
    order value (quote). A position below any of them cannot be sold: it is dust."""

    step: float = 0.0
    min_qty: float = 0.0
    min_notional: float = 0.0

    def is_dust(self, qty: float, price: float) -> bool:
        return qty < max(self.step, self.min_qty) or qty * price < self.min_notional


@dataclass(frozen=True)
class OrderRequest:
    """An order the runner wants executed; ``qty`` is in base units (e.g. BTC).

    ``type="stop"``: a protective stop (a sell that rests at the venue and becomes a market
    order when the price trades at or below ``stop_price``; bots.runner's daily-loss stop)."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    type: Literal["market", "stop"] = "market"
    reason: str = ""
    stop_price: float | None = None


@dataclass(frozen=True)
class OrderResult:
    """What became of an order: ``avg_price``/``fee`` are None/0 until something filled."""

    client_order_id: str
    status: OrderStatus
    filled_qty: float
    avg_price: float | None
    fee: float
    fee_currency: str
    exchange_order_id: str | None
    reason: str = ""
    filled_ms: int | None = None  # when a resting (stop) order filled, if the venue says


@runtime_checkable
class Broker(Protocol):
    """Executes orders for one bot. ``live`` is True only for a broker that moves real money."""

    name: str
    live: bool

    def submit(self, req: OrderRequest) -> OrderResult:
        """Place ``req``; the same ``client_order_id`` twice returns the first result."""
        ...

    def fetch_order(self, client_order_id: str, symbol: str) -> OrderResult | None:
        """The order sent under ``client_order_id``, or None if the venue never saw it."""
        ...

    def balances(self) -> dict[str, float]:
        """Free balance per asset (quote currency included, e.g. ``{"USDT": 300.0}``)."""
        ...


def client_order_id(
    bot: str, assignment_version: int, symbol: str, bar_open_ms: int, side: Side
) -> str:
    """The deterministic id of the order ``bot`` sends for the bar that opened at ``bar_open_ms``.

    ``f"{bot}-{assignment_version}-{symbol}-{bar_open_ms}-{side}"``; when that exceeds Binance's
    36 characters it is shortened by hashing (still deterministic, still distinct per input)
    while keeping the bot name readable.
    """
    raw = f"{bot}-{assignment_version}-{symbol}-{bar_open_ms}-{side}"
    if len(raw) <= MAX_CLIENT_ORDER_ID:
        return raw
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    prefix = f"{bot[:8]}-"
    return prefix + digest[: MAX_CLIENT_ORDER_ID - len(prefix)]
