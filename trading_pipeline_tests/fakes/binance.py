"""A local HTTP server that speaks Binance spot REST the way ccxt 4.5 reads it.

Tests point ccxt at it with :func:`trading_pipeline.venues.exchange.make_exchange`
(``base_url=srv.url``), so the live path runs real HTTP, real signing and ccxt's own parsing and
error mapping, with no internet. Klines come from polars frames in the canonical kline schema;
market orders fill at the last close (or a price set with :meth:`FakeBinance.set_price`) with a
0.1% commission in the asset received, as Binance charges it without BNB.

Faults are injected per request (:class:`Fault`): Binance error codes (``-2010`` insufficient
balance, ``-2013`` unknown order), HTTP 429/418 rate limits, 5xx, and slow answers that make the
client time out, optionally after the order was really placed (the case idempotent client order
ids exist for). Sell ``STOP_LOSS`` orders (stop-market) rest with their quantity locked and trigger
on the first served bar, opened at or after the order and closed by the fake's now, whose low
reaches the stop (or when a set price does): they fill at ``min(stop, that bar's open)``, a gap
through the stop filling at the open, timed at the bar's open. Like Binance, a ``newClientOrderId`` must be unique among *open* orders only: the
server happily fills a second order with the id of a filled one, so a client that re-sends
blindly after a timeout really doubles its order here.

Binds 127.0.0.1 on an ephemeral port; every request is recorded in ``srv.requests``.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import hmac
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import polars as pl

from trading_pipeline.market.schema import INTERVAL_MS

QUOTES = ("USDT", "FDUSD", "USDC", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR")
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
COMMISSION = 0.001
INSUFFICIENT_BALANCE = (-2010, "Account has insufficient balance for requested action.")
UNKNOWN_ORDER = (-2013, "Order does not exist.")


@dataclass(frozen=True)
class MarketRules:
    """One symbol's exchangeInfo filters (what ccxt turns into precision and limits)."""

    tick_size: float = 0.01
    step_size: float = 0.00001
    min_qty: float = 0.00001
    max_qty: float = 9000.0
    min_notional: float = 5.0
    status: str = "TRADING"


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method``/``path`` abnormally.

    ``status`` (HTTP status, 0 = keep the normal one) with a Binance ``{"code", "msg"}`` body when
    ``code`` is set or a plain-text body otherwise; ``delay_s`` sleeps before answering (longer
    than the client's timeout → the client sees a timeout); ``process`` handles the request
    normally first, so an order exists even though the client never saw the answer; ``reset``
    drops the connection (after ``delay_s``) instead of answering.
    """

    path: str
    method: str | None = None
    status: int = 0
    code: int | None = None
    msg: str = ""
    delay_s: float = 0.0
    process: bool = False
    times: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    reset: bool = False

    @classmethod
    def reject(
        cls, code: int, msg: str, *, path: str = "/api/v3/order", method: str | None = "POST"
    ) -> Fault:
        """A Binance error answer (HTTP 400), e.g. ``-2010`` insufficient balance."""
        return cls(path=path, method=method, status=400, code=code, msg=msg)

    @classmethod
    def insufficient_balance(cls) -> Fault:
        return cls.reject(*INSUFFICIENT_BALANCE)

    @classmethod
    def rate_limit(
        cls,
        *,
        path: str = "/api/v3/order",
        method: str | None = None,
        status: int = 429,
        times: int = 1,
    ) -> Fault:
        """HTTP 429 (or 418, the IP ban) with Binance's -1003 body and a Retry-After header."""
        return cls(
            path=path,
            method=method,
            status=status,
            code=-1003,
            msg="Too much request weight used; current limit is 6000 request weight per 1 MINUTE.",
            times=times,
            headers={"Retry-After": "1"},
        )

    @classmethod
    def server_error(
        cls,
        *,
        path: str = "/api/v3/order",
        method: str | None = None,
        status: int = 503,
        times: int = 1,
    ) -> Fault:
        """A plain-text 5xx (ccxt: ExchangeNotAvailable, a NetworkError)."""
        return cls(path=path, method=method, status=status, times=times)

    @classmethod
    def slow(
        cls,
        delay_s: float,
        *,
        path: str = "/api/v3/order",
        method: str | None = "POST",
        process: bool = True,
        times: int = 1,
    ) -> Fault:
        """Answer after ``delay_s`` seconds; by default the request is processed first."""
        return cls(path=path, method=method, delay_s=delay_s, process=process, times=times)

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and path == self.path and self.method in (None, method)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str
    params: dict[str, str]  # query and form body merged


@dataclass
class FakeOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str  # BUY / SELL
    type: str  # MARKET / LIMIT
    orig_qty: float
    price: float  # limit price (0 for market)
    status: str  # NEW / FILLED / CANCELED
    executed_qty: float = 0.0
    quote_qty: float = 0.0
    commission: float = 0.0
    commission_asset: str = ""
    fill_price: float | None = None
    time_ms: int = 0
    update_ms: int = 0
    trade_id: int | None = None
    stop_price: float = 0.0  # STOP_LOSS orders


def split_symbol(symbol: str) -> tuple[str, str]:
    """``BTCUSDT`` → ``("BTC", "USDT")`` by the longest known quote suffix."""
    for q in sorted(QUOTES, key=len, reverse=True):
        if symbol.endswith(q) and len(symbol) > len(q):
            return symbol[: -len(q)], q
    raise ValueError(f"cannot split symbol {symbol!r} into base and quote")


def _parse_key(key: str | tuple[str, str], df: pl.DataFrame) -> tuple[str, str]:
    """Klines keys: ``"BTCUSDT"`` (interval from the bar spacing), ``"BTCUSDT-1h"``,
    ``"spot-BTCUSDT-1h"`` (a store series key) or ``("BTCUSDT", "1h")``."""
    if isinstance(key, tuple):
        return key[0], key[1]
    parts = key.split("-")
    if len(parts) == 3:
        return parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1]
    if df.height < 2:
        raise ValueError(f"cannot infer the interval of {key!r} from fewer than two bars")
    step_ms = int((df["open_time"][1] - df["open_time"][0]).total_seconds() * 1000)
    for name, ms in INTERVAL_MS.items():
        if ms == step_ms:
            return key, name
    raise ValueError(f"bar spacing of {key!r} ({step_ms} ms) is not a Binance interval")


def _ms(col: pl.Series) -> list[int]:
    return col.dt.epoch("ms").to_list()


def _fmt(x: float) -> str:
    return f"{x:.8f}"


def _decimals(step: float) -> int:
    return max(0, round(-math.log10(step))) if step < 1 else 0


class _Klines:
    """One symbol × interval frame as plain lists, for fast slicing by time."""

    def __init__(self, df: pl.DataFrame, interval: str) -> None:
        df = df.sort("open_time")
        self.interval_ms = INTERVAL_MS[interval]
        self.open_ms = _ms(df["open_time"])
        if "close_time" in df.columns and df["close_time"].null_count() == 0:
            self.close_ms = _ms(df["close_time"])
        else:
            self.close_ms = [t + self.interval_ms - 1 for t in self.open_ms]

        def col(name: str, default: float = 0.0) -> list[Any]:
            if name in df.columns:
                return [default if v is None else v for v in df[name].to_list()]
            return [default] * df.height

        self.rows = list(
            zip(
                col("open"),
                col("high"),
                col("low"),
                col("close"),
                col("volume"),
                col("quote_volume"),
                col("trades", 0),
                col("taker_buy_base_volume"),
                col("taker_buy_quote_volume"),
                strict=True,
            )
        )

    def upto(self, now_ms: int | None) -> int:
        """How many bars are visible at ``now_ms`` (bars that opened at or before it)."""
        if now_ms is None:
            return len(self.open_ms)

        return bisect.bisect_right(self.open_ms, now_ms)

    def row(self, i: int) -> list[Any]:
        o, h, lo, c, v, qv, n, tb, tq = self.rows[i]
        return [
            self.open_ms[i],
            _fmt(o),
            _fmt(h),
            _fmt(lo),
            _fmt(c),
            _fmt(v),
            self.close_ms[i],
            _fmt(qv),
            int(n),
            _fmt(tb),
            _fmt(tq),
            "0",
        ]


class BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class FakeBinance:
    """State and request handling of the fake venue (the HTTP plumbing is in :class:`_Handler`).

    ``api_key``/``secret``: when set, signed endpoints check the ``X-MBX-APIKEY`` header and the
    HMAC-SHA256 signature like Binance does (-2014 / -1022); when ``None`` any key is accepted.
    """

    def __init__(
        self,
        klines: Mapping[Any, pl.DataFrame] | None = None,
        *,
        faults: Sequence[Fault] = (),
        balances: Mapping[str, float] | None = None,
        symbols: Sequence[str] | None = None,
        rules: Mapping[str, MarketRules] | None = None,
        api_key: str | None = None,
        secret: str | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._klines: dict[tuple[str, str], _Klines] = {}
        self._symbols: list[str] = list(symbols or ())
        self.rules: dict[str, MarketRules] = dict(rules or {})
        self.prices: dict[str, float] = {}
        self.balances: dict[str, float] = dict(balances or {"USDT": 10_000.0})
        self.faults: list[Fault] = list(faults)
        self.requests: list[RecordedRequest] = []
        self.orders: list[FakeOrder] = []
        self.locked: dict[str, float] = {}  # quantity held by resting stop orders
        self.now_ms: int | None = None
        self.api_key, self.secret = api_key, secret
        self.url = ""
        self._next_order_id = 1
        self._next_trade_id = 1
        for key, df in (klines or {}).items():
            symbol, interval = _parse_key(key, df)
            self.set_klines(symbol, interval, df)
        if not self._symbols:
            self._symbols = list(DEFAULT_SYMBOLS)

    # -- configuration -------------------------------------------------------------------------
    def set_klines(self, symbol: str, interval: str, df: pl.DataFrame) -> None:
        """Serve ``df`` (canonical kline schema) for ``symbol`` at ``interval``."""
        if interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {interval!r}")
        split_symbol(symbol)
        with self._lock:
            self._klines[(symbol, interval)] = _Klines(df, interval)
            if symbol not in self._symbols:
                self._symbols.append(symbol)

    def set_now(self, when: int | Any | None) -> None:
        """Pretend the time is ``when`` (epoch ms or an aware datetime; ``None`` = serve every
        bar): klines after it are hidden, the bar containing it is the open candle, and the last
        visible close is the ticker price."""
        if when is not None and not isinstance(when, int):
            when = int(when.timestamp() * 1000)
        with self._lock:
            self.now_ms = when

    def set_price(self, symbol: str, price: float | None) -> None:
        """Fix ``symbol``'s ticker and fill price (``None`` = back to the last kline close)."""
        with self._lock:
            if price is None:
                self.prices.pop(symbol, None)
            else:
                self.prices[symbol] = float(price)
            if symbol not in self._symbols:
                split_symbol(symbol)
                self._symbols.append(symbol)

    def set_balance(self, asset: str, amount: float) -> None:
        with self._lock:
            self.balances[asset] = float(amount)

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and method in (None, r.method)]

    # -- state helpers -------------------------------------------------------------------------
    def _rules(self, symbol: str) -> MarketRules:
        return self.rules.get(symbol, MarketRules())

    def _now(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def price(self, symbol: str) -> float:
        if symbol in self.prices:
            return self.prices[symbol]
        series = [(k[1], v) for k, v in self._klines.items() if k[0] == symbol]
        for _, kl in sorted(series, key=lambda kv: INTERVAL_MS[kv[0]]):
            n = kl.upto(self.now_ms)
            if n:
                return float(kl.rows[n - 1][3])
        raise BinanceError(400, -1121, "Invalid symbol.")

    def _check_symbol(self, symbol: str | None) -> str:
        if not symbol or symbol not in self._symbols:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return symbol

    # -- public endpoints ----------------------------------------------------------------------
    def exchange_info(self, p: Mapping[str, str]) -> Any:
        wanted = self._symbols
        if "symbol" in p:
            wanted = [self._check_symbol(p["symbol"])]
        elif "symbols" in p:
            wanted = [self._check_symbol(s) for s in json.loads(p["symbols"])]
        out = []
        for s in wanted:
            base, quote = split_symbol(s)
            r = self._rules(s)
            out.append(
                {
                    "symbol": s,
                    "status": r.status,
                    "baseAsset": base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": [
                        "LIMIT",
                        "LIMIT_MAKER",
                        "MARKET",
                        "STOP_LOSS",
                        "STOP_LOSS_LIMIT",
                        "TAKE_PROFIT_LIMIT",
                    ],
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": True,
                    "cancelReplaceAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": _fmt(r.tick_size),
                            "maxPrice": "1000000.00000000",
                            "tickSize": _fmt(r.tick_size),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": _fmt(r.min_qty),
                            "maxQty": _fmt(r.max_qty),
                            "stepSize": _fmt(r.step_size),
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": "0.00000000",
                            "maxQty": _fmt(r.max_qty),
                            "stepSize": "0.00000000",
                        },
                        {
                            "filterType": "NOTIONAL",
                            "minNotional": _fmt(r.min_notional),
                            "applyMinToMarket": True,
                            "maxNotional": "9000000.00000000",
                            "applyMaxToMarket": False,
                            "avgPriceMins": 5,
                        },
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": [
                        "EXPIRE_TAKER",
                        "EXPIRE_MAKER",
                        "EXPIRE_BOTH",
                    ],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": self._now(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": out,
        }

    def klines(self, p: Mapping[str, str]) -> Any:
        symbol = self._check_symbol(p.get("symbol"))
        interval = p.get("interval", "")
        if interval not in INTERVAL_MS:
            raise BinanceError(400, -1120, "Invalid interval.")
        kl = self._klines.get((symbol, interval))
        if kl is None:
            return []
        limit = min(int(p.get("limit", 500)), 1000)
        if limit <= 0:
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'limit'.")

        n = kl.upto(self.now_ms)
        end = n
        if "endTime" in p:
            end = min(n, bisect.bisect_right(kl.open_ms, int(p["endTime"])))
        if "startTime" in p:
            start = bisect.bisect_left(kl.open_ms, int(p["startTime"]))
            stop = min(end, start + limit)
        else:
            stop = end
            start = max(0, end - limit)
        return [kl.row(i) for i in range(start, stop)]

    def _ticker24(self, symbol: str) -> dict[str, Any]:
        last = self.price(symbol)
        now = self._now()
        open_p, high, low, vol, qvol = last, last, last, 0.0, 0.0
        series = sorted(
            ((k[1], v) for k, v in self._klines.items() if k[0] == symbol),
            key=lambda kv: INTERVAL_MS[kv[0]],
        )
        if series and symbol not in self.prices:
            kl = series[0][1]
            n = kl.upto(self.now_ms)
            if n:
                end_ms = kl.open_ms[n - 1]
                rows = [kl.rows[i] for i in range(n) if kl.open_ms[i] > end_ms - 86_400_000]
                open_p = float(rows[0][0])
                high = max(float(r[1]) for r in rows)
                low = min(float(r[2]) for r in rows)
                vol = sum(float(r[4]) for r in rows)
                qvol = sum(float(r[5]) for r in rows)
        tick = self._rules(symbol).tick_size
        return {
            "symbol": symbol,
            "priceChange": _fmt(last - open_p),
            "priceChangePercent": f"{(last / open_p - 1) * 100 if open_p else 0.0:.3f}",
            "weightedAvgPrice": _fmt(qvol / vol if vol else last),
            "prevClosePrice": _fmt(open_p),
            "lastPrice": _fmt(last),
            "lastQty": "0.00100000",
            "bidPrice": _fmt(last - tick),
            "bidQty": "1.00000000",
            "askPrice": _fmt(last + tick),
            "askQty": "1.00000000",
            "openPrice": _fmt(open_p),
            "highPrice": _fmt(high),
            "lowPrice": _fmt(low),
            "volume": _fmt(vol),
            "quoteVolume": _fmt(qvol),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": 1,
            "count": 1,
        }

    def ticker_24hr(self, p: Mapping[str, str]) -> Any:
        if "symbol" in p:
            return self._ticker24(self._check_symbol(p["symbol"]))
        names = json.loads(p["symbols"]) if "symbols" in p else self._symbols
        return [self._ticker24(self._check_symbol(s)) for s in names if self._has_price(s)]

    def _has_price(self, symbol: str) -> bool:
        try:
            self.price(symbol)
        except BinanceError:
            return False
        return True

    def ticker_price(self, p: Mapping[str, str]) -> Any:
        if "symbol" in p:
            s = self._check_symbol(p["symbol"])
            return {"symbol": s, "price": _fmt(self.price(s))}
        return [
            {"symbol": s, "price": _fmt(self.price(s))} for s in self._symbols if self._has_price(s)
        ]

    def depth(self, p: Mapping[str, str]) -> Any:
        s = self._check_symbol(p.get("symbol"))
        last, tick = self.price(s), self._rules(s).tick_size
        levels = min(int(p.get("limit", 100)), 20)
        return {
            "lastUpdateId": self._now(),
            "bids": [[_fmt(last - tick * (i + 1)), "1.00000000"] for i in range(levels)],
            "asks": [[_fmt(last + tick * (i + 1)), "1.00000000"] for i in range(levels)],
        }

    # -- signed endpoints ----------------------------------------------------------------------
    def check_signature(self, headers: Mapping[str, str], query: str, body: str) -> None:
        key = headers.get("x-mbx-apikey")
        if not key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        if self.api_key is not None and key != self.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload = (query + body) if query and body else (query or body)
        if "signature=" not in payload:
            raise BinanceError(400, -1102, "Mandatory parameter 'signature' was not sent.")
        signed, _, signature = payload.rpartition("&signature=")
        if self.secret is not None:
            want = hmac.new(self.secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(want, signature):
                raise BinanceError(400, -1022, "Signature for this request is not valid.")

    @staticmethod
    def _check_filters(r: MarketRules, otype: str, qty: float, price: float) -> None:
        """LOT_SIZE and PRICE_FILTER, answered with Binance's -1013 like the real venue."""
        steps = qty / r.step_size
        if qty < r.min_qty or qty > r.max_qty or abs(steps - round(steps)) > 1e-6:
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        if otype != "MARKET":
            if price <= 0:
                raise BinanceError(400, -1102, "Mandatory parameter 'price' was not sent.")
            ticks = price / r.tick_size
            if abs(ticks - round(ticks)) > 1e-6:
                raise BinanceError(400, -1013, "Filter failure: PRICE_FILTER")

    def new_order(self, p: Mapping[str, str]) -> Any:
        symbol = self._check_symbol(p.get("symbol"))
        side, otype = p.get("side", ""), p.get("type", "")
        if side not in {"BUY", "SELL"}:
            raise BinanceError(400, -1102, "Mandatory parameter 'side' was not sent.")
        if otype == "STOP_LOSS" and side == "SELL":
            return self._new_stop(symbol, p)
        if otype not in {"MARKET", "LIMIT", "LIMIT_MAKER"}:
            raise BinanceError(400, -1116, "Invalid orderType.")
        client_id = p.get("newClientOrderId") or f"fake{self._next_order_id}"
        if len(client_id) > 36:
            raise BinanceError(
                400, -1100, "Illegal characters found in parameter 'newClientOrderId'."
            )
        if any(o.client_order_id == client_id and o.status == "NEW" for o in self.orders):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        r = self._rules(symbol)
        if r.status != "TRADING":
            raise BinanceError(400, -1013, "Market is closed.")
        last = self.price(symbol)
        price = float(p["price"]) if "price" in p else 0.0
        if "quantity" in p:
            qty = float(p["quantity"])
        elif "quoteOrderQty" in p and otype == "MARKET":
            qty = math.floor(float(p["quoteOrderQty"]) / last / r.step_size + 1e-9) * r.step_size
        else:
            raise BinanceError(400, -1102, "Mandatory parameter 'quantity' was not sent.")
        self._check_filters(r, otype, qty, price)
        fill_price = last
        if qty * (price or last) < r.min_notional:
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")
        marketable = (
            otype == "MARKET"
            or (side == "BUY" and price >= last)
            or (side == "SELL" and price <= last)
        )
        if otype == "LIMIT_MAKER" and marketable:
            raise BinanceError(400, -2010, "Order would immediately match and take.")
        base, quote = split_symbol(symbol)
        need_asset, need = (quote, qty * (price or last)) if side == "BUY" else (base, qty)
        if self.balances.get(need_asset, 0.0) + 1e-12 < need:
            raise BinanceError(400, *INSUFFICIENT_BALANCE)
        now = self._now()
        order = FakeOrder(
            order_id=self._next_order_id,
            client_order_id=client_id,
            symbol=symbol,
            side=side,
            type=otype,
            orig_qty=qty,
            price=price,
            status="NEW",
            time_ms=now,
            update_ms=now,
        )
        self._next_order_id += 1
        if marketable:
            self._fill(order, fill_price)
        self.orders.append(order)
        return self._order_json(
            order, full=p.get("newOrderRespType", "FULL") == "FULL", transact=True
        )

    def _new_stop(self, symbol: str, p: Mapping[str, str]) -> Any:
        """A resting sell STOP_LOSS: the quantity is locked until it triggers or is cancelled."""
        client_id = p.get("newClientOrderId") or f"fake{self._next_order_id}"
        if len(client_id) > 36:
            raise BinanceError(
                400, -1100, "Illegal characters found in parameter 'newClientOrderId'."
            )
        if any(o.client_order_id == client_id and o.status == "NEW" for o in self.orders):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        if "quantity" not in p:
            raise BinanceError(400, -1102, "Mandatory parameter 'quantity' was not sent.")
        if "stopPrice" not in p:
            raise BinanceError(400, -1102, "Mandatory parameter 'stopPrice' was not sent.")
        r = self._rules(symbol)
        qty, stop = float(p["quantity"]), float(p["stopPrice"])
        self._check_filters(r, "MARKET", qty, 0.0)
        ticks = stop / r.tick_size
        if stop <= 0 or abs(ticks - round(ticks)) > 1e-6:
            raise BinanceError(400, -1013, "Filter failure: PRICE_FILTER")
        if qty * stop < r.min_notional:
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")
        if stop >= self.price(symbol):
            raise BinanceError(400, -2010, "Stop price would trigger immediately.")
        base, _ = split_symbol(symbol)
        if self.balances.get(base, 0.0) + 1e-12 < qty:
            raise BinanceError(400, *INSUFFICIENT_BALANCE)
        self.balances[base] = self.balances.get(base, 0.0) - qty
        self.locked[base] = self.locked.get(base, 0.0) + qty
        now = self._now()
        order = FakeOrder(
            order_id=self._next_order_id,
            client_order_id=client_id,
            symbol=symbol,
            side="SELL",
            type="STOP_LOSS",
            orig_qty=qty,
            price=0.0,
            status="NEW",
            time_ms=now,
            update_ms=now,
            stop_price=stop,
        )
        self._next_order_id += 1
        self.orders.append(order)
        return self._order_json(order, full=p.get("newOrderRespType", "FULL") == "FULL")

    def _unlock(self, o: FakeOrder) -> None:
        base, _ = split_symbol(o.symbol)
        self.locked[base] = max(0.0, self.locked.get(base, 0.0) - o.orig_qty)
        self.balances[base] = self.balances.get(base, 0.0) + o.orig_qty

    def trigger_stops(self) -> None:
        """Fill every resting stop the market traded through (see the module docstring)."""
        for o in self.orders:
            if o.type != "STOP_LOSS" or o.status != "NEW":
                continue
            hit: tuple[float, int] | None = None
            if o.symbol in self.prices:
                if self.prices[o.symbol] <= o.stop_price:
                    hit = (self.prices[o.symbol], self._now())
            else:
                series = [(k[1], v) for k, v in self._klines.items() if k[0] == o.symbol]
                for _, kl in sorted(series, key=lambda kv: INTERVAL_MS[kv[0]])[:1]:
                    now = self._now()
                    for i in range(bisect.bisect_left(kl.open_ms, o.time_ms), kl.upto(now)):
                        if kl.close_ms[i] > now:
                            break  # the open candle: its low is not known yet
                        if kl.rows[i][2] <= o.stop_price:
                            hit = (min(o.stop_price, float(kl.rows[i][0])), kl.open_ms[i])
                            break
            if hit is not None:
                self._unlock(o)
                self._fill(o, hit[0])
                o.update_ms = hit[1]

    def _fill(self, order: FakeOrder, price: float) -> None:
        base, quote = split_symbol(order.symbol)
        cost = order.orig_qty * price
        if order.side == "BUY":
            fee, fee_asset = order.orig_qty * COMMISSION, base
            self.balances[quote] = self.balances.get(quote, 0.0) - cost
            self.balances[base] = self.balances.get(base, 0.0) + order.orig_qty - fee
        else:
            fee, fee_asset = cost * COMMISSION, quote
            self.balances[base] = self.balances.get(base, 0.0) - order.orig_qty
            self.balances[quote] = self.balances.get(quote, 0.0) + cost - fee
        order.status = "FILLED"
        order.executed_qty, order.quote_qty, order.fill_price = order.orig_qty, cost, price
        order.commission, order.commission_asset = fee, fee_asset
        order.trade_id = self._next_trade_id
        self._next_trade_id += 1

    def _order_json(self, o: FakeOrder, *, full: bool = False, transact: bool = False) -> Any:
        out: dict[str, Any] = {
            "symbol": o.symbol,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_order_id,
            "price": _fmt(o.price),
            "origQty": _fmt(o.orig_qty),
            "executedQty": _fmt(o.executed_qty),
            "cummulativeQuoteQty": _fmt(o.quote_qty),
            "status": o.status,
            "timeInForce": "GTC",
            "type": o.type,
            "side": o.side,
            "workingTime": o.time_ms,
            "selfTradePreventionMode": "NONE",
        }
        if transact:
            out["transactTime"] = o.update_ms
        else:
            out.update(
                time=o.time_ms,
                updateTime=o.update_ms,
                isWorking=o.status == "NEW",
                stopPrice=_fmt(o.stop_price),
                icebergQty="0.00000000",
                origQuoteOrderQty="0.00000000",
            )
        if full:
            out["fills"] = (
                [
                    {
                        "price": _fmt(o.fill_price or 0.0),
                        "qty": _fmt(o.executed_qty),
                        "commission": _fmt(o.commission),
                        "commissionAsset": o.commission_asset,
                        "tradeId": o.trade_id,
                    }
                ]
                if o.status == "FILLED"
                else []
            )
        return out

    def _find(self, p: Mapping[str, str]) -> FakeOrder:
        symbol = self._check_symbol(p.get("symbol"))
        found = [
            o
            for o in self.orders
            if o.symbol == symbol
            and (
                ("orderId" in p and str(o.order_id) == p["orderId"])
                or ("origClientOrderId" in p and o.client_order_id == p["origClientOrderId"])
            )
        ]
        if not found:
            raise BinanceError(400, *UNKNOWN_ORDER)
        return found[-1]

    def get_order(self, p: Mapping[str, str]) -> Any:
        return self._order_json(self._find(p))

    def cancel_order(self, p: Mapping[str, str]) -> Any:
        try:
            o = self._find(p)
        except BinanceError:
            raise BinanceError(400, -2011, "Unknown order sent.") from None
        if o.status != "NEW":
            raise BinanceError(400, -2011, "Unknown order sent.")
        if o.type == "STOP_LOSS":
            self._unlock(o)
        o.status, o.update_ms = "CANCELED", self._now()
        out = self._order_json(o)
        out["origClientOrderId"] = o.client_order_id
        return out

    def open_orders(self, p: Mapping[str, str]) -> Any:
        symbol = p.get("symbol")
        if symbol is not None:
            self._check_symbol(symbol)
        return [
            self._order_json(o)
            for o in self.orders
            if o.status == "NEW" and symbol in (None, o.symbol)
        ]

    def my_trades(self, p: Mapping[str, str]) -> Any:
        symbol = self._check_symbol(p.get("symbol"))
        out = []
        for o in self.orders:
            if o.symbol != symbol or o.trade_id is None:
                continue
            if "orderId" in p and str(o.order_id) != p["orderId"]:
                continue
            out.append(
                {
                    "symbol": o.symbol,
                    "id": o.trade_id,
                    "orderId": o.order_id,
                    "orderListId": -1,
                    "price": _fmt(o.fill_price or 0.0),
                    "qty": _fmt(o.executed_qty),
                    "quoteQty": _fmt(o.quote_qty),
                    "commission": _fmt(o.commission),
                    "commissionAsset": o.commission_asset,
                    "time": o.update_ms,
                    "isBuyer": o.side == "BUY",
                    "isMaker": False,
                    "isBestMatch": True,
                }
            )
        return out

    def account(self, p: Mapping[str, str]) -> Any:
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self._now(),
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": _fmt(v), "locked": _fmt(self.locked.get(a, 0.0))}
                for a, v in sorted(self.balances.items())
            ],
            "permissions": ["SPOT"],
            "uid": 1,
        }

    ROUTES: ClassVar[dict[tuple[str, str], tuple[str, bool]]] = {
        ("GET", "/api/v3/ping"): ("ping", False),
        ("GET", "/api/v3/time"): ("server_time", False),
        ("GET", "/api/v3/exchangeInfo"): ("exchange_info", False),
        ("GET", "/api/v3/klines"): ("klines", False),
        ("GET", "/api/v3/uiKlines"): ("klines", False),
        ("GET", "/api/v3/ticker/24hr"): ("ticker_24hr", False),
        ("GET", "/api/v3/ticker/price"): ("ticker_price", False),
        ("GET", "/api/v3/depth"): ("depth", False),
        ("POST", "/api/v3/order"): ("new_order", True),
        ("GET", "/api/v3/order"): ("get_order", True),
        ("DELETE", "/api/v3/order"): ("cancel_order", True),
        ("GET", "/api/v3/openOrders"): ("open_orders", True),
        ("GET", "/api/v3/myTrades"): ("my_trades", True),
        ("GET", "/api/v3/account"): ("account", True),
    }

    def ping(self, p: Mapping[str, str]) -> Any:
        return {}

    def server_time(self, p: Mapping[str, str]) -> Any:
        return {"serverTime": self._now()}

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: str
    ) -> tuple[int, Any, Fault | None]:
        """Route one request: ``(HTTP status, JSON-able answer, fault to apply)``."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        with self._lock:
            self.requests.append(
                RecordedRequest(method, path, dict(parse_qsl(query)), dict(headers), body, params)
            )
            fault = next((f for f in self.faults if f.matches(method, path)), None)
            if fault is not None:
                fault.times -= 1
                if not fault.process:
                    return 0, None, fault
            self.trigger_stops()
            route = self.ROUTES.get((method, path))
            if route is None:
                return (
                    404,
                    {"code": -1000, "msg": f"fake Binance does not serve {method} {path}"},
                    fault,
                )
            name, signed = route
            try:
                if signed:
                    self.check_signature(headers, query, body)
                return 200, getattr(self, name)(params), fault
            except BinanceError as exc:
                return exc.status, {"code": exc.code, "msg": exc.msg}, fault


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests read srv.requests instead

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, fault = self.server.fake.handle(
            self.command, parts.path, parts.query, headers, body
        )
        extra: Mapping[str, str] = {}
        if fault is not None:
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if fault.reset:  # a dropped connection: no answer at all
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.close()
                return
            if fault.status:
                status = fault.status
                payload = {"code": fault.code, "msg": fault.msg} if fault.code is not None else None
            extra = fault.headers
        if payload is None:
            data, ctype = (self.responses.get(status, ("error",))[0]).encode(), "text/plain"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json;charset=UTF-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout fault): nothing to answer

    do_GET = do_POST = do_DELETE = do_PUT = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeBinance) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client hanging up mid-answer is not an error worth a traceback


@contextlib.contextmanager
def running_fake_binance(
    klines: Mapping[Any, pl.DataFrame] | None = None,
    *,
    faults: Sequence[Fault] = (),
    balances: Mapping[str, float] | None = None,
    symbols: Sequence[str] | None = None,
    rules: Mapping[str, MarketRules] | None = None,
    api_key: str | None = None,
    secret: str | None = None,
) -> Iterator[FakeBinance]:
    """Start a :class:`FakeBinance` on 127.0.0.1 (ephemeral port) in a thread; stop it on exit.

    ``srv.url`` is ``http://127.0.0.1:PORT``: pass it as ``make_exchange(..., base_url=srv.url)``.
    """
    fake = FakeBinance(
        klines,
        faults=faults,
        balances=balances,
        symbols=symbols,
        rules=rules,
        api_key=api_key,
        secret=secret,
    )
    server = _Server(fake)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-binance", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
