"""The live broker: market orders on a real venue through ccxt, built so money is never doubled.

Binance, Binance US and Coinbase Advanced Trade; what differs per venue (how the client order
id is sent and looked up, how a market buy is sized, stops) is a small adapter,
bots/venue_binance.py and bots/venue_coinbase.py. The guarantees below hold for every venue
(the Binance spelling is given; Coinbase's is in its adapter's docstring).

- **Keys** come only from the environment (``TP_BINANCE_API_KEY`` / ``TP_BINANCE_API_SECRET``,
  ``TP_BINANCEUS_…``, ``TP_COINBASE_API_KEY`` / ``TP_COINBASE_API_SECRET``: a CDP key name and
  its EC private key, PEM, ``\\n`` escapes allowed; ccxt signs each request with an ES256 JWT),
  read by :meth:`Credentials.from_env` from the mapping the caller passes, normally
  ``os.environ`` at the command line), are redacted in every repr, and are scrubbed from every
  reason and exception text this module produces. The exchange's own request logging is
  redacted by :func:`trading_pipeline.venues.exchange.make_exchange` (bearer tokens too).
- **Never live by default**: :meth:`CcxtBroker.connect` refuses the venue's real URL unless
  ``live=True`` is passed explicitly; a broker pointed at a local server is not live.
- **Precision and minimums**: the quantity is cut to the market's step
  (``amount_to_precision``); below ``limits.amount.min`` or ``limits.cost.min`` the order is
  refused locally with the reason, nothing is sent.
- **Idempotency**: the client order id goes out as ``newClientOrderId``. Binance only refuses a
  duplicate id among *open* orders, so before sending (and before every re-send after a network
  failure or timeout, when the order may have reached the venue) the order is looked up by its
  client id; a found order is returned instead of placing another.
- **Protective stops** (``OrderRequest(type="stop")``, the runner's daily-loss stop) go out as
  Binance ``STOP_LOSS`` sell orders (stop-market: the venue sells at market once the price trades
  at the stop; the quantity is locked while it rests) and are cancelled with
  :meth:`CcxtBroker.cancel_order`; a filled stop reports when it filled (``filled_ms``).
- **Balances**: a sell (or a stop) is cut to the free balance of its coin, so the fee's
  rounding never makes a full sell fail; ``total_balances`` (free + locked) is what the runner
  reconciles its ledger with, ``market_rules`` what it calls dust.
- **Wrong keys**: an authentication or permission error (Binance ``-2015``) raises
  :class:`~trading_pipeline.bots.broker.CredentialsRefused` from any call; nothing is retried.
- **Errors**: network errors, timeouts, 5xx, DDoS protection and rate limits are retried with
  exponential backoff; insufficient funds and invalid orders are final (status ``rejected`` with
  the reason); an unknown order on lookup means "not placed".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import ccxt

from trading_pipeline.bots.broker import (
    CredentialsRefused,
    MarketRules,
    OrderRequest,
    OrderResult,
)
from trading_pipeline.bots.venue_binance import BinanceVenue
from trading_pipeline.bots.venue_coinbase import CoinbaseVenue
from trading_pipeline.errors import UserInputError
from trading_pipeline.retrying import GaveUp
from trading_pipeline.venues.exchange import (
    REDACTED,
    RetryPolicy,
    make_exchange,
    redact_tokens,
    retry_after_hint,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

KEY_ENV = {
    "binance": "TP_BINANCE_API_KEY",
    "binanceus": "TP_BINANCEUS_API_KEY",
    "coinbase": "TP_COINBASE_API_KEY",
}
SECRET_ENV = {
    "binance": "TP_BINANCE_API_SECRET",
    "binanceus": "TP_BINANCEUS_API_SECRET",
    "coinbase": "TP_COINBASE_API_SECRET",
}
VENUE_ADAPTERS: dict[str, type[BinanceVenue] | type[CoinbaseVenue]] = {
    "binance": BinanceVenue,
    "binanceus": BinanceVenue,
    "coinbase": CoinbaseVenue,
}

# Worth retrying: the request may not have been processed, or the venue asked us to slow down.
RETRYABLE: tuple[type[Exception], ...] = (ccxt.NetworkError,)  # RequestTimeout, DDoSProtection,
# RateLimitExceeded, ExchangeNotAvailable, InvalidNonce are all NetworkError subclasses
# The key itself is refused (-2015 and friends; PermissionDenied and AccountSuspended are
# subclasses): no order can go out, the runner halts (CredentialsRefused).
AUTH: tuple[type[Exception], ...] = (ccxt.AuthenticationError,)
# Final answers about this order: retrying cannot change them.
FINAL: tuple[type[Exception], ...] = (
    ccxt.InsufficientFunds,
    ccxt.InvalidOrder,
    ccxt.BadRequest,
    ccxt.BadSymbol,
    ccxt.PermissionDenied,
    ccxt.AuthenticationError,
    ccxt.AccountSuspended,
)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RETRYABLE) and not isinstance(exc, AUTH + FINAL)


class BrokerUnavailable(RuntimeError):
    """The venue could not be reached after every retry; the order's fate is unknown, so the
    caller must keep it pending and ask again (same client order id) later."""


@dataclass(frozen=True)
class Credentials:
    """An API key pair; ``repr``/``str`` never show it."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(api_key='{REDACTED}', secret='{REDACTED}')"

    __str__ = __repr__

    @classmethod
    def from_env(cls, env: Mapping[str, str], venue: str = "binance") -> Credentials:
        """Read the venue's key pair from ``env``; a missing one is a one-line UserInputError
        naming the variable (never its value)."""
        if venue not in KEY_ENV:
            raise UserInputError(f"no API key variables for venue {venue!r}")
        key = (env.get(KEY_ENV[venue]) or "").strip()
        secret = (env.get(SECRET_ENV[venue]) or "").strip()
        if "\\n" in secret:  # a PEM key (Coinbase CDP) kept on one line in a .env file
            secret = secret.replace("\\n", "\n")
        missing = [n for n, v in ((KEY_ENV[venue], key), (SECRET_ENV[venue], secret)) if not v]
        if missing:
            raise UserInputError(f"live trading needs {' and '.join(missing)} in the environment")
        return cls(key, secret)


# An order cannot wait as long as a history download: fewer, shorter retries.
BROKER_RETRY = RetryPolicy(attempts=5, base_s=0.5, max_s=8.0, jitter_s=0.25)


class CcxtBroker:
    """A :class:`~trading_pipeline.bots.broker.Broker` over a ccxt exchange (market orders).

    ``exchange`` is built by the caller (usually :meth:`connect`); ``sleep`` is the backoff's
    clock so tests do not wait.
    """

    def __init__(
        self,
        exchange: ccxt.Exchange,
        *,
        name: str = "binance",
        live: bool = False,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.exchange = exchange
        self.name = name
        self.live = live
        self.retry = retry or BROKER_RETRY
        self._sleep = sleep
        self._secrets = tuple(
            s
            for s in (*secrets, getattr(exchange, "apiKey", ""), getattr(exchange, "secret", ""))
            if isinstance(s, str) and s
        )
        self._results: dict[str, OrderResult] = {}
        self._markets_loaded = False
        if name not in VENUE_ADAPTERS:
            raise UserInputError(f"no live order path for venue {name!r}")
        self.venue = VENUE_ADAPTERS[name]()

    @classmethod
    def connect(
        cls,
        venue: str,
        credentials: Credentials,
        *,
        base_url: str | None = None,
        live: bool = False,
        timeout_ms: int = 10000,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> CcxtBroker:
        """A broker on ``venue``; the real venue (no ``base_url``) only with ``live=True``."""
        if base_url is None and not live:
            raise UserInputError(
                f"refusing to trade on the real {venue} without --live; "
                "set a local venue URL for a dry run"
            )
        exchange = make_exchange(
            venue,
            base_url=base_url,
            api_key=credentials.api_key,
            secret=credentials.secret,
            timeout_ms=timeout_ms,
        )
        return cls(
            exchange,
            name=venue,
            live=live and base_url is None,
            retry=retry,
            sleep=sleep,
            secrets=(credentials.api_key, credentials.secret),
        )

    def __repr__(self) -> str:
        return f"<CcxtBroker {self.name} live={self.live}>"

    # -- helpers -----------------------------------------------------------------------------
    def redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, REDACTED)
        return redact_tokens(text)

    def _why(self, exc: BaseException) -> str:
        msg = " ".join(str(exc).split())
        return self.redact(f"{type(exc).__name__}: {msg}")[:300]

    def _refused(self, exc: BaseException) -> CredentialsRefused:
        return CredentialsRefused(f"{self.name} refused the API key ({self._why(exc)})")

    def _policy(self) -> RetryPolicy:
        return replace(self.retry, sleep=self._sleep)

    def _log_retry(self, what: str) -> Callable[[BaseException, int, float], None]:
        def say(exc: BaseException, attempt: int, wait: float) -> None:
            log.warning("%s: %s; retry %d in %.1fs", what, self._why(exc), attempt, wait)

        return say

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` under the one retry policy: network errors and rate limits are retried with
        backoff and jitter (the venue's ``Retry-After`` honoured); a refused key and final
        errors are not."""
        try:
            return self._policy().call(
                what,
                fn,
                on=_retryable,
                hint=retry_after_hint(self.exchange),
                before_retry=self._log_retry(what),
            )
        except AUTH as exc:
            raise self._refused(exc) from None
        except GaveUp as exc:
            raise BrokerUnavailable(
                f"{what}: gave up after {exc.attempts} attempts: {self._why(exc.last)}"
            ) from None

    def _load_markets(self) -> None:
        if not self._markets_loaded:
            self._call("load markets", lambda: self.exchange.load_markets())
            self._markets_loaded = True

    def market(self, symbol: str) -> dict[str, Any] | None:
        """ccxt's market for a venue id such as ``BTCUSDT`` or ``BTC-USD`` (None when the venue
        lacks it)."""
        self._load_markets()
        found = self.exchange.markets_by_id.get(symbol) if self.exchange.markets_by_id else None
        if found:
            return dict(found[0])
        markets = self.exchange.markets or {}
        return dict(markets[symbol]) if symbol in markets else None

    def _result(
        self, req_id: str, order: Mapping[str, Any], market: Mapping[str, Any]
    ) -> OrderResult:
        """An :class:`OrderResult` from a ccxt order (fees from its fills, or its trades)."""
        filled = float(order.get("filled") or 0.0)
        status_ccxt = order.get("status")
        is_stop = bool(order.get("triggerPrice")) or "STOP" in str(
            (order.get("info") or {}).get("type") or ""
        )
        if status_ccxt == "open" and filled <= 0:
            status = "open"
        elif filled > 0:
            status = "filled" if status_ccxt in ("closed", "canceled", "expired") else "open"
        elif status_ccxt == "rejected":
            status = "rejected"
        else:
            status = "canceled"
        avg = order.get("average")
        if avg is None and filled > 0 and order.get("cost"):
            avg = float(order["cost"]) / filled
        fees = [f for f in (order.get("fees") or []) if f and f.get("cost") is not None]
        if filled > 0 and not fees and order.get("id") is not None:
            fees = self._fees_from_trades(str(order["id"]), market["symbol"])
        fee, fee_ccy = _one_fee(fees, market.get("base", ""), market.get("quote", ""))
        return OrderResult(
            client_order_id=str(order.get("clientOrderId") or req_id),
            status=status,  # type: ignore[arg-type]
            filled_qty=filled,
            avg_price=float(avg) if avg is not None else None,
            fee=fee,
            fee_currency=fee_ccy or market.get("quote", ""),
            exchange_order_id=str(order["id"]) if order.get("id") is not None else None,
            reason="" if status != "canceled" else f"venue status {status_ccxt}",
            filled_ms=_when_filled(order) if is_stop and status == "filled" else None,
        )

    def _fees_from_trades(self, order_id: str, symbol: str) -> list[dict[str, Any]]:
        market = self.exchange.market(symbol)
        return self._call(
            "fetch trades", lambda: self.venue.trade_fees(self.exchange, market, order_id)
        )

    def _rejected(self, req: OrderRequest, reason: str, quote: str = "") -> OrderResult:
        result = OrderResult(
            req.client_order_id, "rejected", 0.0, None, 0.0, quote, None, self.redact(reason)
        )
        log.info(
            "order %s %s %s rejected: %s", req.client_order_id, req.side, req.symbol, result.reason
        )
        return result

    # -- Broker ------------------------------------------------------------------------------
    def balances(self) -> dict[str, float]:
        bal = self._call("fetch balance", lambda: self.exchange.fetch_balance())
        return {a: float(v) for a, v in (bal.get("free") or {}).items() if v}

    def total_balances(self) -> dict[str, float]:
        """Free + locked per asset (a resting stop locks its quantity): what the account holds."""
        bal = self._call("fetch balance", lambda: self.exchange.fetch_balance())
        return {a: float(v) for a, v in (bal.get("total") or {}).items() if v}

    def market_rules(self, symbol: str) -> MarketRules | None:
        """The venue's lot step, minimum quantity and minimum order value for ``symbol``."""
        market = self.market(symbol)
        if market is None:
            return None
        limits = market.get("limits") or {}
        step = (market.get("precision") or {}).get("amount")
        return MarketRules(
            float(step or 0.0),
            float((limits.get("amount") or {}).get("min") or 0.0),
            float((limits.get("cost") or {}).get("min") or 0.0),
        )

    def _capped(self, req: OrderRequest, market: Mapping[str, Any]) -> OrderRequest:
        """A sell cut to the free balance of its base asset (a fee rounding must not turn every
        full sell into InsufficientFunds); other orders unchanged."""
        if req.side != "sell":
            return req
        free = self.balances().get(str(market.get("base", "")), 0.0)
        if req.qty > free:
            log.info("order %s: sell %g cut to the free %g", req.client_order_id, req.qty, free)
            return replace(req, qty=free)
        return req

    def fetch_order(self, client_order_id: str, symbol: str) -> OrderResult | None:
        """The order the venue holds under ``client_order_id`` (None: it never arrived)."""
        market = self.market(symbol)
        if market is None:
            return None

        order = self._call(
            "fetch order", lambda: self.venue.find(self.exchange, market, client_order_id)
        )
        if order is None:
            return None
        return self._result(client_order_id, order, market)

    def submit(self, req: OrderRequest) -> OrderResult:
        """Place ``req`` once: a known id returns its first result, never a second order."""
        cached = self._results.get(req.client_order_id)
        if cached is not None:
            return cached
        try:
            result = self._submit(req)
        except FINAL as exc:  # e.g. bad keys on the lookup: nothing was sent
            result = self._rejected(req, self._why(exc))
        if result.status != "open":
            self._results[req.client_order_id] = result
        return result

    def cancel_order(self, client_order_id: str, symbol: str) -> OrderResult | None:
        """Cancel a resting order (a protective stop); its final state — ``filled`` when it
        triggered first — or None when the venue never saw it."""
        market = self.market(symbol)
        if market is None:
            return None

        order = self._call(
            "cancel order", lambda: self.venue.cancel(self.exchange, market, client_order_id)
        )
        if order is None or order.get("status") is None:
            return self.fetch_order(client_order_id, symbol)
        self._results.pop(client_order_id, None)
        return self._result(client_order_id, order, market)

    def _place_stop(self, req: OrderRequest, market: Mapping[str, Any]) -> OrderResult:
        """A sell ``STOP_LOSS`` resting at the venue (looked up first: never placed twice)."""
        quote = str(market.get("quote", ""))
        if req.side != "sell" or not (req.stop_price or 0.0) > 0:
            return self._rejected(req, "a stop is a sell with a stop price", quote)
        if not self.venue.supports_stops:
            return self._rejected(req, f"{self.name} offers no stop-market order", quote)
        existing = self.fetch_order(req.client_order_id, req.symbol)
        if existing is not None:
            return existing
        req = self._capped(req, market)
        refusal = self._check_limits(req, market)
        if refusal is not None:
            return self._rejected(req, refusal, quote)
        sym = market["symbol"]
        amount = float(self.exchange.amount_to_precision(sym, req.qty))
        stop = float(self.exchange.price_to_precision(sym, req.stop_price))
        try:
            order = self._call(
                "place stop",
                lambda: self.venue.create_stop(
                    self.exchange, market, amount, stop, req.client_order_id
                ),
            )
        except FINAL as exc:
            return self._rejected(req, self._why(exc), quote)
        result = self._result(req.client_order_id, order, market)
        log.info(
            "stop %s sell %s %g at %g: %s",
            req.client_order_id,
            req.symbol,
            amount,
            stop,
            result.status,
        )
        return result

    def _submit(self, req: OrderRequest) -> OrderResult:
        if req.type == "stop":
            market = self.market(req.symbol)
            if market is None:
                return self._rejected(req, f"{req.symbol} is not traded on {self.name}")
            return self._place_stop(req, market)
        if req.type != "market":
            return self._rejected(req, f"unsupported order type {req.type}")
        if req.side not in ("buy", "sell"):
            return self._rejected(req, f"unknown side {req.side!r}")
        if not req.qty > 0:
            return self._rejected(req, f"quantity must be positive, got {req.qty}")
        market = self.market(req.symbol)
        if market is None:
            return self._rejected(req, f"{req.symbol} is not traded on {self.name}")
        quote = str(market.get("quote", ""))
        existing = self.fetch_order(req.client_order_id, req.symbol)
        if existing is not None:  # sent before (a restart): report it, never re-send
            return existing
        req = self._capped(req, market)
        refusal = self._check_limits(req, market)
        if refusal is not None:
            return self._rejected(req, refusal, quote)
        amount = float(self.exchange.amount_to_precision(market["symbol"], req.qty))
        return self._send(req, market, amount)

    def _check_limits(self, req: OrderRequest, market: Mapping[str, Any]) -> str | None:
        sym = market["symbol"]
        try:
            amount = float(self.exchange.amount_to_precision(sym, req.qty))
        except (ccxt.InvalidOrder, ccxt.ArgumentsRequired) as exc:
            return f"quantity {req.qty} below {sym}'s precision: {self._why(exc)}"
        limits = market.get("limits") or {}
        min_amount = (limits.get("amount") or {}).get("min")
        if amount <= 0 or (min_amount is not None and amount < float(min_amount)):
            return f"quantity {amount:g} {market.get('base')} below {sym}'s minimum {min_amount}"
        min_cost = (limits.get("cost") or {}).get("min")
        if min_cost:
            price = self._last_price(sym)
            if price and amount * float(price) < float(min_cost):
                return (
                    f"order value {amount * float(price):.4f} {market.get('quote')} below "
                    f"{sym}'s minimum {min_cost}"
                )
        return None

    def _last_price(self, sym: str) -> float | None:
        ticker = self._call("fetch ticker", lambda: self.exchange.fetch_ticker(sym))
        price = ticker.get("last") or ticker.get("close")
        return float(price) if price else None

    def _send(self, req: OrderRequest, market: Mapping[str, Any], amount: float) -> OrderResult:
        quote = str(market.get("quote", ""))
        tries = 0
        # a venue that sizes market buys in quote (Coinbase) is told the price they are sized at
        price = None
        if req.side == "buy" and self.venue.buys_in_quote:
            price = self._last_price(market["symbol"])

        def send() -> OrderResult:
            nonlocal tries
            tries += 1
            if tries > 1:  # the last request may have reached the venue: look before resending
                found = self.fetch_order(req.client_order_id, req.symbol)
                if found is not None:
                    return found
            order = self.venue.create_market(
                self.exchange, market, req.side, amount, req.client_order_id, price
            )
            order = self.venue.complete(self.exchange, market, order)
            return self._result(req.client_order_id, order, market)

        def say(exc: BaseException, attempt: int, wait: float) -> None:
            log.warning(
                "order %s: %s; looking it up, retry %d in %.1fs",
                req.client_order_id,
                self._why(exc),
                attempt,
                wait,
            )

        try:
            result = self._policy().call(
                f"order {req.client_order_id}",
                send,
                on=_retryable,
                hint=retry_after_hint(self.exchange),
                before_retry=say,
            )
        except ccxt.InvalidOrder as exc:
            if self.venue.is_duplicate(exc):  # open under this id already: that one counts
                found = self.fetch_order(req.client_order_id, req.symbol)
                if found is not None:
                    return found
            return self._rejected(req, self._why(exc), quote)
        except AUTH as exc:
            raise self._refused(exc) from None
        except FINAL as exc:
            return self._rejected(req, self._why(exc), quote)
        except GaveUp as exc:
            raise BrokerUnavailable(
                f"order {req.client_order_id}: gave up after {exc.attempts} attempts: "
                f"{self._why(exc.last)}"
            ) from None
        log.info(
            "order %s %s %s %g: %s %g @ %s",
            req.client_order_id,
            req.side,
            req.symbol,
            amount,
            result.status,
            result.filled_qty,
            result.avg_price,
        )
        return result


def _when_filled(order: Mapping[str, Any]) -> int | None:
    """When a resting order filled, as the venue reports it."""
    for key in ("lastTradeTimestamp", "lastUpdateTimestamp"):
        if order.get(key) is not None:
            return int(order[key])
    info = order.get("info") or {}
    return int(info["updateTime"]) if info.get("updateTime") is not None else None


def _one_fee(fees: list[Mapping[str, Any]], base: str, quote: str) -> tuple[float, str]:
    """Fees summed per currency, reported in one: the quote's or the base's when charged (those
    change cash or position), else the first other currency (e.g. BNB, recorded only)."""
    by_ccy: dict[str, float] = {}
    for f in fees:
        ccy = str(f.get("currency") or "")
        by_ccy[ccy] = by_ccy.get(ccy, 0.0) + float(f.get("cost") or 0.0)
    for ccy in (quote, base, *by_ccy):
        if ccy in by_ccy:
            return by_ccy[ccy], ccy
    return 0.0, quote
