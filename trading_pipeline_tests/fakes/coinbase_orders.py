"""The trading half of the fake Coinbase: Advanced Trade's signed order and account endpoints.

Served by :class:`trading_pipeline_tests.fakes.coinbase.FakeCoinbase` (one server, one port) in
the format ccxt 4.5's ``coinbase`` reads and the Advanced Trade REST reference documents:

* ``POST /api/v3/brokerage/orders`` — ``{"client_order_id", "product_id", "side",
  "order_configuration": {"market_market_ioc": {"base_size" | "quote_size"}}}``; answers
  ``{"success": true, "success_response": {"order_id", "product_id", "side",
  "client_order_id"}}`` or, HTTP 200 still, ``{"success": false, "error_response": {"error",
  "message", "error_details", "preview_failure_reason", "new_order_failure_reason"}}``
  (``INSUFFICIENT_FUND`` / ``PREVIEW_INSUFFICIENT_FUND``, size precision, size too small);
* ``GET /api/v3/brokerage/orders/historical/{order_id}`` → ``{"order": {…}}`` and
  ``GET …/orders/historical/batch?product_ids=&order_status=&limit=&cursor=`` → ``{"orders",
  "has_next", "cursor", "sequence"}``, newest first;
* ``POST /api/v3/brokerage/orders/batch_cancel`` ``{"order_ids": [...]}`` → ``{"results"}``;
* ``GET /api/v3/brokerage/accounts`` (``available_balance`` / ``hold`` per currency) and
  ``GET /api/v3/brokerage/transaction_summary`` (the fee tier ccxt reads at market loading).

A market order fills at once at the product's price (:meth:`FakeCoinbase.price`) with the taker
fee in the quote currency: a ``base_size`` order moves exactly that base; a ``quote_size`` buy
spends exactly the quote *including* the fee (``filled_value = quote / (1 + fee)``,
``size_inclusive_of_fees``), as Coinbase fills quote-sized market buys.

Auth: every private call must carry ``Authorization: Bearer <JWT>`` as ccxt signs CDP keys
(ES256, ``kid`` = the key name, ``uri`` = ``METHOD host/path``); with ``api_key`` set the key name
must match, with ``public_key`` the signature is verified; otherwise 401 ``Unauthorized``.
A repeated ``client_order_id`` is accepted as a *new* order by default (the worst case: a
client that re-sends blindly really doubles here; ``dedupe=True`` answers with the existing
order instead).
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FIAT = ("USD", "EUR", "GBP")
TAKER_FEE = 0.006  # Coinbase Advanced, entry tier
MAKER_FEE = 0.004
PRIVATE = "/api/v3/brokerage/"


@dataclass(frozen=True)
class ProductRules:
    """A product's increments and minimums, as ``GET …/products`` lists them."""

    base_increment: float = 0.00000001
    quote_increment: float = 0.01
    base_min_size: float = 0.00000001
    quote_min_size: float = 1.0
    price_increment: float = 0.01


@dataclass
class CbOrder:
    order_id: str
    client_order_id: str
    product_id: str
    side: str  # BUY / SELL
    config: dict[str, Any]
    status: str  # FILLED / OPEN / CANCELLED
    created_ms: int
    filled_size: float = 0.0
    filled_value: float = 0.0
    total_fees: float = 0.0
    average_price: float = 0.0
    size_in_quote: bool = False


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


def _num(x: float) -> str:
    text = f"{x:.10f}".rstrip("0").rstrip(".")
    return text or "0"


def _on_grid(x: float, step: float) -> bool:
    steps = x / step
    return abs(steps - round(steps)) < 1e-6


def _b64json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class NotCreated(Exception):
    """An order Coinbase refuses: answered 200 with ``"success": false``."""

    def __init__(self, error: str, message: str, preview: str) -> None:
        super().__init__(message)
        self.error, self.message, self.preview = error, message, preview


@dataclass
class CoinbaseBook:
    """Balances, orders and rules of the fake account; handles the private endpoints."""

    balances: dict[str, float] = field(default_factory=lambda: {"USD": 10_000.0})
    rules: dict[str, ProductRules] = field(default_factory=dict)
    orders: list[CbOrder] = field(default_factory=list)
    api_key: str | None = None
    public_key: Any = None  # a cryptography EC public key: verify every JWT's signature
    dedupe: bool = False
    taker_fee: float = TAKER_FEE

    def rules_of(self, product_id: str) -> ProductRules:
        return self.rules.get(product_id, ProductRules())

    # ---- auth ------------------------------------------------------------------------------
    def authorized(self, method: str, path: str, headers: Mapping[str, str]) -> bool:
        """Whether the request carries a JWT ccxt would send for this key and this request."""
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return False
        parts = auth[len("Bearer ") :].split(".")
        if len(parts) != 3:
            return False
        try:
            head, claims = _b64json(parts[0]), _b64json(parts[1])
        except ValueError:
            return False
        if head.get("alg") != "ES256" or claims.get("sub") != head.get("kid"):
            return False
        if self.api_key is not None and head.get("kid") != self.api_key:
            return False
        uri = str(claims.get("uri", ""))
        if not (uri.startswith(method + " ") and uri.split("?")[0].endswith(path)):
            return False
        return self.public_key is None or self._verified(parts)

    def _verified(self, parts: list[str]) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        raw = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        if len(raw) != 64:
            return False
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        try:
            self.public_key.verify(
                encode_dss_signature(r, s),
                f"{parts[0]}.{parts[1]}".encode(),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature:
            return False
        return True

    # ---- routes ----------------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: str,
        *,
        now_ms: int,
        price: Callable[[str], float | None],
        products: set[str],
    ) -> tuple[int, Any]:
        """``(status, JSON body)`` of one authorized private request."""
        rest = path[len(PRIVATE) :]
        if method == "GET" and rest == "accounts":
            return 200, self.accounts(now_ms)
        if method == "GET" and rest == "transaction_summary":
            return 200, self.transaction_summary()
        if method == "POST" and rest == "orders":
            return 200, self.create(json.loads(body or "{}"), now_ms, price, products)
        if method == "GET" and rest == "orders/historical/batch":
            return 200, self.list_orders(query)
        if method == "GET" and rest.startswith("orders/historical/"):
            found = [o for o in self.orders if o.order_id == rest.split("/")[-1]]
            if not found:
                msg = "order with this orderID was not found"
                return 404, {"error": "NOT_FOUND", "error_details": msg, "message": msg}
            return 200, {"order": self.order_json(found[0])}
        if method == "POST" and rest == "orders/batch_cancel":
            ids = json.loads(body or "{}").get("order_ids") or []
            return 200, {"results": [self.cancel(i) for i in ids]}
        return 404, {"error": "NOT_FOUND", "error_details": "not found", "message": "not found"}

    def accounts(self, now_ms: int) -> dict[str, Any]:
        when = iso(now_ms)
        accounts = [
            {
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-coinbase/{ccy}")),
                "name": f"{ccy} Wallet",
                "currency": ccy,
                "available_balance": {"value": _num(amount), "currency": ccy},
                "default": True,
                "active": True,
                "created_at": when,
                "updated_at": when,
                "deleted_at": None,
                "type": "ACCOUNT_TYPE_FIAT" if ccy in FIAT else "ACCOUNT_TYPE_CRYPTO",
                "ready": True,
                "hold": {"value": "0", "currency": ccy},
                "retail_portfolio_id": "fake-portfolio",
                "platform": "ACCOUNT_PLATFORM_CONSUMER",
            }
            for ccy, amount in sorted(self.balances.items())
        ]
        return {"accounts": accounts, "has_next": False, "cursor": "", "size": len(accounts)}

    def transaction_summary(self) -> dict[str, Any]:
        return {
            "total_volume": 0,
            "total_fees": 0,
            "fee_tier": {
                "pricing_tier": "Advanced 1",
                "usd_from": "0",
                "usd_to": "1000",
                "taker_fee_rate": _num(self.taker_fee),
                "maker_fee_rate": _num(MAKER_FEE),
                "aop_from": "",
                "aop_to": "",
            },
            "margin_rate": None,
            "goods_and_services_tax": None,
            "advanced_trade_only_volume": 0,
            "advanced_trade_only_fees": 0,
            "coinbase_pro_volume": 0,
            "coinbase_pro_fees": 0,
        }

    def create(
        self,
        req: Mapping[str, Any],
        now_ms: int,
        price: Callable[[str], float | None],
        products: set[str],
    ) -> dict[str, Any]:
        config = dict(req.get("order_configuration") or {})
        cid = str(req.get("client_order_id") or "")
        if self.dedupe and cid:
            for o in self.orders:
                if o.client_order_id == cid:
                    return self._success(o, config)
        try:
            order = self._fill(req, config, cid, now_ms, price, products)
        except NotCreated as exc:
            return {
                "success": False,
                "failure_reason": "UNKNOWN_FAILURE_REASON",
                "order_id": "",
                "error_response": {
                    "error": exc.error,
                    "message": exc.message,
                    "error_details": "",
                    "preview_failure_reason": exc.preview,
                    "new_order_failure_reason": exc.error,
                },
                "order_configuration": config,
            }
        self.orders.append(order)
        return self._success(order, config)

    @staticmethod
    def _success(o: CbOrder, config: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "success": True,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": o.order_id,
            "success_response": {
                "order_id": o.order_id,
                "product_id": o.product_id,
                "side": o.side,
                "client_order_id": o.client_order_id,
            },
            "order_configuration": dict(config),
        }

    def _fill(
        self,
        req: Mapping[str, Any],
        config: Mapping[str, Any],
        cid: str,
        now_ms: int,
        price: Callable[[str], float | None],
        products: set[str],
    ) -> CbOrder:
        pid, side = str(req.get("product_id") or ""), str(req.get("side") or "")
        if pid not in products:
            raise NotCreated(
                "INVALID_PRODUCT_ID", "Invalid product_id", "UNKNOWN_PREVIEW_FAILURE_REASON"
            )
        if side not in ("BUY", "SELL") or set(config) != {"market_market_ioc"}:
            raise NotCreated(
                "UNSUPPORTED_ORDER_CONFIGURATION",
                "this fake fills market_market_ioc orders only",
                "UNKNOWN_PREVIEW_FAILURE_REASON",
            )
        sizes = config["market_market_ioc"]
        px = price(pid)
        if px is None:
            raise NotCreated(
                "INVALID_NO_LIQUIDITY", "no liquidity", "UNKNOWN_PREVIEW_FAILURE_REASON"
            )
        r = self.rules_of(pid)
        base, quote = pid.split("-")
        if "quote_size" in sizes and side == "BUY":
            spend = float(sizes["quote_size"])
            self._check(spend, r.quote_increment, r.quote_min_size, "QUOTE")
            value = spend / (1.0 + self.taker_fee)
            size, fee, in_quote = value / px, spend - value, True
        elif "base_size" in sizes:
            size = float(sizes["base_size"])
            self._check(size, r.base_increment, r.base_min_size, "BASE")
            value, in_quote = size * px, False
            fee = value * self.taker_fee
            if value < r.quote_min_size:
                raise NotCreated(
                    "INVALID_LIMIT_PRICE",
                    "order value below the quote minimum",
                    "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL",
                )
        else:
            raise NotCreated(
                "INVALID_ARGUMENT", "market_market_ioc needs base_size or quote_size", ""
            )
        if side == "BUY":
            need_ccy, need = quote, (value + fee)
        else:
            need_ccy, need = base, size
        if self.balances.get(need_ccy, 0.0) + 1e-9 < need:
            raise NotCreated(
                "INSUFFICIENT_FUND",
                "Insufficient balance in source account",
                "PREVIEW_INSUFFICIENT_FUND",
            )
        sign = 1.0 if side == "BUY" else -1.0
        self.balances[base] = self.balances.get(base, 0.0) + sign * size
        self.balances[quote] = self.balances.get(quote, 0.0) - sign * value - fee
        return CbOrder(
            order_id=str(uuid.uuid4()),
            client_order_id=cid or str(uuid.uuid4()),
            product_id=pid,
            side=side,
            config={"market_market_ioc": dict(sizes)},
            status="FILLED",
            created_ms=now_ms,
            filled_size=size,
            filled_value=value,
            total_fees=fee,
            average_price=px,
            size_in_quote=in_quote,
        )

    @staticmethod
    def _check(size: float, step: float, minimum: float, what: str) -> None:
        if not (math.isfinite(size) and size > 0) or not _on_grid(size, step):
            raise NotCreated(
                "INVALID_SIZE_PRECISION",
                f"Invalid {what.lower()} size precision",
                f"PREVIEW_INVALID_{what}_SIZE_PRECISION",
            )
        if size < minimum - 1e-12:
            raise NotCreated(
                "INVALID_SIZE_PRECISION" if what == "BASE" else "INVALID_LIMIT_PRICE",
                f"{what.lower()} size below the minimum {minimum}",
                f"PREVIEW_INVALID_{what}_SIZE_TOO_SMALL",
            )

    def cancel(self, order_id: str) -> dict[str, Any]:
        found = [o for o in self.orders if o.order_id == order_id and o.status == "OPEN"]
        if not found:
            return {
                "success": False,
                "failure_reason": "UNKNOWN_CANCEL_ORDER",
                "order_id": order_id,
            }
        found[0].status = "CANCELLED"
        return {
            "success": True,
            "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON",
            "order_id": order_id,
        }

    def list_orders(self, q: Mapping[str, str]) -> dict[str, Any]:
        rows = [o for o in reversed(self.orders)]  # newest first
        if q.get("product_ids"):
            wanted = set(q["product_ids"].split(","))
            rows = [o for o in rows if o.product_id in wanted]
        if q.get("order_status"):
            rows = [o for o in rows if o.status == q["order_status"]]
        limit = int(q.get("limit") or 100)
        start = int(q.get("cursor") or 0)
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        return {
            "orders": [self.order_json(o) for o in page],
            "sequence": "0",
            "has_next": more,
            "cursor": str(start + limit) if more else "",
        }

    @staticmethod
    def order_json(o: CbOrder) -> dict[str, Any]:
        done = o.status == "FILLED"
        return {
            "order_id": o.order_id,
            "product_id": o.product_id,
            "user_id": "fake-user",
            "order_configuration": o.config,
            "side": o.side,
            "client_order_id": o.client_order_id,
            "status": o.status,
            "time_in_force": "IMMEDIATE_OR_CANCEL",
            "created_time": iso(o.created_ms),
            "completion_percentage": "100" if done else "0",
            "filled_size": _num(o.filled_size),
            "average_filled_price": _num(o.average_price),
            "fee": "",
            "number_of_fills": "1" if done else "0",
            "filled_value": _num(o.filled_value),
            "pending_cancel": False,
            "size_in_quote": o.size_in_quote,
            "total_fees": _num(o.total_fees),
            "size_inclusive_of_fees": o.size_in_quote,
            "total_value_after_fees": _num(
                o.filled_value + o.total_fees if o.side == "BUY" else o.filled_value - o.total_fees
            ),
            "trigger_status": "INVALID_ORDER_TYPE",
            "order_type": "MARKET",
            "reject_reason": "REJECT_REASON_UNSPECIFIED",
            "settled": done,
            "product_type": "SPOT",
            "reject_message": "",
            "cancel_message": "",
            "order_placement_source": "RETAIL_ADVANCED",
            "outstanding_hold_amount": "0",
            "is_liquidation": False,
            "last_fill_time": iso(o.created_ms) if done else None,
            "edit_history": [],
            "leverage": "",
            "margin_type": "UNKNOWN_MARGIN_TYPE",
            "retail_portfolio_id": "fake-portfolio",
        }
