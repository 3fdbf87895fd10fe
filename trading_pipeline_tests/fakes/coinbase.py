"""A local stand-in for Coinbase Advanced Trade's REST API, as ccxt 4.5's ``coinbase`` uses it.

The trading half (signed order, account and fee endpoints, the account's balances and orders)
is :mod:`trading_pipeline_tests.fakes.coinbase_orders`, served on the same port.

Serves exactly the calls ``load_markets``, ``fetch_ohlcv`` and ``fetch_ticker`` make (checked against
``ccxt/coinbase.py``: ``fetch_currencies``, ``fetch_markets_v3``, ``fetch_ohlcv``/``parse_ohlcv``):

* ``GET /v2/currencies``, ``/v2/currencies/crypto``, ``/v2/exchange-rates``, ``/v2/time``,
  ``/api/v3/brokerage/time``;
* ``GET /api/v3/brokerage/market/products`` (``{"products": [...], "num_products": "N"}``;
  ``product_type=FUTURE`` answers an empty list: this fake lists spot products only) and
  ``…/market/products/{id}`` (increments and minimums from :class:`ProductRules`);
* ``GET …/market/products/{id}/ticker?limit=`` (``{"trades": [{"price", …}], "best_bid",
  "best_ask"}``, the price :meth:`FakeCoinbase.price` fills at);
* ``GET /api/v3/brokerage/market/products/{id}/candles?start=&end=&granularity=[&limit=]``:
  ``{"candles": [{"start": "<unix s>", "low", "high", "open", "close", "volume"}]}``, every field a
  string, newest first, candles whose start lies in ``[start, end]``; more than
  :data:`MAX_CANDLES` (350) slots, a missing parameter or an unknown granularity is a 400
  ``INVALID_ARGUMENT``, an unknown product a 404 ``NOT_FOUND``.

Candles come from polars frames (``open_time`` + OHLCV, e.g. the canonical kline schema or a
freqtrade feather read through ``market.candles``), one base granularity per product; coarser
granularities are aggregated from it as Coinbase does. Hours without trades are simply absent,
like Coinbase's own gaps. ``now`` (unix ms) hides candles that have not opened yet.

Faults for tests: :meth:`FakeCoinbase.add_fault` answers the next N matching requests (path glob,
optionally one method) with an HTTP status (429 gives Coinbase's ``rate_limit_exceeded`` body,
which ccxt maps to ``RateLimitExceeded``, with a ``Retry-After`` when asked; other statuses a
plain-text body, as a gateway error page would be), late (``delay_s`` beyond the client's
timeout is a timeout), or by dropping the connection (``reset``); with ``process=True`` the
request is handled first (an order is placed) and only the answer is lost. Every request is
recorded in ``requests``. Binds 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import polars as pl

from trading_pipeline.market.schema import INTERVAL_MS, OHLCV, UTC_US
from trading_pipeline_tests.fakes.coinbase_orders import PRIVATE, CoinbaseBook, ProductRules

MAX_CANDLES = 350
GRANULARITY_S: dict[str, int] = {
    "ONE_MINUTE": 60,
    "FIVE_MINUTE": 300,
    "FIFTEEN_MINUTE": 900,
    "THIRTY_MINUTE": 1800,
    "ONE_HOUR": 3600,
    "TWO_HOUR": 7200,
    "FOUR_HOUR": 14400,
    "SIX_HOUR": 21600,
    "ONE_DAY": 86400,
}
PRODUCTS_PATH = "/api/v3/brokerage/market/products"
_FIAT = {"USD": "US Dollar", "EUR": "Euro", "GBP": "British Pound"}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: str = ""


@dataclass
class _Fault:
    match: str
    status: int
    remaining: int | None
    delay_s: float = 0.0
    method: str | None = None
    process: bool = False
    reset: bool = False
    retry_after: str | None = None


@dataclass
class _Product:
    product_id: str
    step_s: int
    # (start seconds, open, high, low, close, volume) sorted ascending by start
    rows: list[tuple[int, float, float, float, float, float]] = field(default_factory=list)


def _rows(df: pl.DataFrame) -> list[tuple[int, float, float, float, float, float]]:
    frame = df.select(
        (pl.col("open_time").cast(UTC_US).dt.epoch("s")).alias("start"),
        *[pl.col(c).cast(pl.Float64) for c in OHLCV],
    ).sort("start")
    frame = frame.unique("start", keep="first", maintain_order=True)
    return [
        (int(s), float(o), float(h), float(lo), float(c), float(v))
        for s, o, h, lo, c, v in frame.iter_rows()
    ]


def _num(x: float) -> str:
    """A price as Coinbase writes it: a decimal string (Python's shortest round-trip repr)."""
    text = format(Decimal(repr(float(x))), "f")
    return text[:-2] if text.endswith(".0") else text


class FakeCoinbase(ThreadingHTTPServer):
    """The server; see the module docstring. ``url`` is what ccxt's ``urls['api']['rest']`` gets."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.products: dict[str, _Product] = {}
        self.requests: list[RecordedRequest] = []
        self.now_ms: int | None = None
        self.book = CoinbaseBook()
        self.prices: dict[str, float] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def set_candles(self, product_id: str, df: pl.DataFrame, *, interval: str = "1h") -> None:
        """Serve ``df`` (``open_time`` + OHLCV) as the candles of ``product_id`` at ``interval``."""
        if interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {interval!r}")
        product = _Product(product_id.upper(), INTERVAL_MS[interval] // 1000, _rows(df))
        with self._lock:
            self.products[product.product_id] = product

    def add_fault(
        self,
        status: int = 429,
        *,
        match: str = "*/candles",
        times: int | None = 1,
        delay_s: float = 0.0,
        method: str | None = None,
        process: bool = False,
        reset: bool = False,
        retry_after: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path matches ``match`` (and ``method``) with
        ``status`` (``None``: forever), after ``delay_s`` seconds; status 200 answers normally,
        late; ``reset`` drops the connection instead of answering; ``process`` handles the
        request first (the order exists) and only then fails the answer."""
        with self._lock:
            self._faults.append(
                _Fault(match, status, times, delay_s, method, process, reset, retry_after)
            )

    # ------------------------------------------------------------------ trading state

    def set_price(self, product_id: str, price: float | None) -> None:
        """Fix ``product_id``'s ticker and fill price (None: back to the last visible close)."""
        with self._lock:
            if price is None:
                self.prices.pop(product_id, None)
            else:
                self.prices[product_id] = float(price)

    def price(self, product_id: str) -> float | None:
        """The fill price: a set one, else the close of the last candle opened by ``now``."""
        if product_id in self.prices:
            return self.prices[product_id]
        product = self.products.get(product_id)
        if product is None:
            return None
        rows = product.rows
        if self.now_ms is not None:
            rows = [r for r in rows if r[0] * 1000 <= self.now_ms]
        return rows[-1][4] if rows else None

    def _now_ms(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def orders_placed(self, client_order_id: str | None = None) -> list[Any]:
        """The orders the venue holds (those under ``client_order_id`` only, when given)."""
        return [
            o
            for o in self.book.orders
            if client_order_id is None or o.client_order_id == client_order_id
        ]

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and method in (None, r.method)]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def candle_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/candles")]

    def _take_fault(self, path: str, method: str = "GET") -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method not in (None, method):
                    continue
                if fnmatch.fnmatch(path, fault.match) and fault.remaining != 0:
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _record(self, method: str, path: str, query: dict[str, str], body: str = "") -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, query, body))


class _Handler(BaseHTTPRequestHandler):
    server: FakeCoinbase
    protocol_version = "HTTP/1.1"
    _out: tuple[int, bytes, str] | None = None

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _send(self, status: int, body: Any) -> None:
        self._out = (status, json.dumps(body).encode(), "application/json")

    def _text(self, status: int, text: str) -> None:
        self._out = (status, text.encode(), "text/plain")

    def _error(self, status: int, error: str, message: str) -> None:
        self._send(status, {"error": error, "error_details": message, "message": message})

    def _write(self, extra: Mapping[str, str] | None = None) -> None:
        assert self._out is not None
        status, data, ctype = self._out
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (a timeout fault)

    def _drop(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    def _fail(self, fault: _Fault) -> None:
        """Answer as ``fault`` says (its status, or a dropped connection)."""
        if fault.reset:
            self._drop()
            return
        if fault.status == 429:
            self._error(429, "rate_limit_exceeded", "Too many requests")
        else:  # like a gateway error page: not JSON, so ccxt maps the status
            self._text(fault.status, f"injected HTTP {fault.status}")
        self._write({"Retry-After": fault.retry_after} if fault.retry_after else None)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path).rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.server._record(self.command, path, query, body)
        fault = self.server._take_fault(path, self.command)
        failing = fault is not None and (fault.status != 200 or fault.reset)
        if fault is not None and not fault.process:
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if failing:
                assert fault is not None
                return self._fail(fault)
        self._out = None
        if path.startswith(PRIVATE) and not path.startswith(PRODUCTS_PATH):
            self._private(path, query, body)
        elif self.command == "GET":
            self._route(path, query)
        else:
            self._error(404, "NOT_FOUND", "not found")
        if fault is not None and fault.process:
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if failing:
                return self._fail(fault)
        return self._write()

    do_GET = do_POST = do_DELETE = _serve

    def _private(self, path: str, query: dict[str, str], body: str) -> None:
        srv = self.server
        headers = {k.lower(): v for k, v in self.headers.items()}
        if path == "/api/v3/brokerage/time":
            return self._time(v2=False)
        if not srv.book.authorized(self.command, path, headers):
            return self._text(401, "Unauthorized\n")
        with srv._lock:
            status, payload = srv.book.handle(
                self.command,
                path,
                query,
                body,
                now_ms=srv._now_ms(),
                price=srv.price,
                products=set(srv.products),
            )
        return self._send(status, payload)

    def _route(self, path: str, query: dict[str, str]) -> None:
        if path == "/v2/currencies":
            self._send(200, {"data": self._fiat()})
        elif path == "/v2/currencies/crypto":
            self._send(200, {"data": self._crypto()})
        elif path == "/v2/exchange-rates":
            rates = {c: "1" for c in sorted({*self._bases(), *self._quotes()})}
            self._send(200, {"data": {"currency": "USD", "rates": rates}})
        elif path == "/v2/time":
            self._time(v2=True)
        elif path == PRODUCTS_PATH:
            self._list_products(query)
        elif path.startswith(PRODUCTS_PATH + "/"):
            rest = path[len(PRODUCTS_PATH) + 1 :].split("/")
            product = self.server.products.get(rest[0].upper())
            if product is None:
                self._error(404, "NOT_FOUND", f"product {rest[0]} not found")
            elif len(rest) == 1:
                self._send(200, self._product(product))
            elif rest[1:] == ["candles"]:
                self._candles(product, query)
            elif rest[1:] == ["ticker"]:
                self._ticker(product)
            else:
                self._error(404, "NOT_FOUND", "not found")
        else:
            self._error(404, "NOT_FOUND", "not found")

    # ------------------------------------------------------------------ listing

    def _bases(self) -> list[str]:
        return sorted({p.split("-")[0] for p in self.server.products})

    def _quotes(self) -> list[str]:
        return sorted({p.split("-")[1] for p in self.server.products if "-" in p})

    def _fiat(self) -> list[dict[str, str]]:
        codes = [q for q in self._quotes() if q in _FIAT]
        return [{"id": c, "name": _FIAT[c], "min_size": "0.01"} for c in codes]

    def _crypto(self) -> list[dict[str, str]]:
        codes = sorted({*self._bases(), *(q for q in self._quotes() if q not in _FIAT)})
        return [
            {"asset_id": f"fake-{c.lower()}", "code": c, "name": c, "color": "#000000",
             "sort_index": str(i), "exponent": "8", "type": "crypto", "address_regex": ".*"}
            for i, c in enumerate(codes)
        ]  # fmt: skip

    def _ticker(self, product: _Product) -> None:
        price = self.server.price(product.product_id)
        if price is None:
            self._send(200, {"trades": [], "best_bid": "", "best_ask": ""})
            return
        step = self.server.book.rules_of(product.product_id).price_increment
        when = datetime.fromtimestamp(self.server._now_ms() / 1000, UTC)
        trade = {
            "trade_id": "1",
            "product_id": product.product_id,
            "price": _num(price),
            "size": "0.001",
            "time": when.isoformat().replace("+00:00", "Z"),
            "side": "BUY",
            "bid": "",
            "ask": "",
            "exchange": "",
        }
        self._send(
            200,
            {"trades": [trade], "best_bid": _num(price - step), "best_ask": _num(price + step)},
        )

    def _product(self, product: _Product) -> dict[str, Any]:
        base, _, quote = product.product_id.partition("-")
        price = self.server.price(product.product_id)
        last = _num(price) if price is not None else ""
        r = self.server.book.rules_of(product.product_id)
        return {
            "product_id": product.product_id,
            "price": last,
            "price_percentage_change_24h": "0",
            "volume_24h": "0",
            "volume_percentage_change_24h": "0",
            "base_increment": _num(r.base_increment),
            "quote_increment": _num(r.quote_increment),
            "quote_min_size": _num(r.quote_min_size),
            "quote_max_size": "150000000",
            "base_min_size": _num(r.base_min_size),
            "base_max_size": "3400",
            "base_name": base,
            "quote_name": _FIAT.get(quote, quote),
            "watched": False,
            "is_disabled": False,
            "new": False,
            "status": "online",
            "cancel_only": False,
            "limit_only": False,
            "post_only": False,
            "trading_disabled": False,
            "auction_mode": False,
            "product_type": "SPOT",
            "quote_currency_id": quote,
            "base_currency_id": base,
            "fcm_trading_session_details": None,
            "mid_market_price": "",
            "alias": "",
            "alias_to": [],
            "base_display_symbol": base,
            "quote_display_symbol": quote,
            "view_only": False,
            "price_increment": _num(r.price_increment),
            "display_name": product.product_id,
            "product_venue": "CBE",
        }

    def _list_products(self, query: dict[str, str]) -> None:
        if query.get("product_type", "SPOT").upper() != "SPOT":
            self._send(200, {"products": [], "num_products": 0})
            return
        products = [self._product(p) for _, p in sorted(self.server.products.items())]
        self._send(200, {"products": products, "num_products": len(products)})

    def _time(self, *, v2: bool) -> None:
        ms = self.server.now_ms
        if ms is None:
            ms = int(datetime.now(UTC).timestamp() * 1000)
        iso = datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
        if v2:
            self._send(200, {"data": {"iso": iso, "epoch": ms // 1000}})
        else:
            self._send(200, {"iso": iso, "epochSeconds": str(ms // 1000), "epochMillis": str(ms)})

    # ------------------------------------------------------------------ candles

    def _candles(self, product: _Product, query: dict[str, str]) -> None:
        missing = [k for k in ("start", "end", "granularity") if not query.get(k)]
        if missing:
            self._error(400, "INVALID_ARGUMENT", f"missing {', '.join(missing)}")
            return
        step = GRANULARITY_S.get(query["granularity"].upper())
        if step is None:
            self._error(400, "INVALID_ARGUMENT", f"invalid granularity {query['granularity']}")
            return
        try:
            start, end = int(query["start"]), int(query["end"])
            limit = int(query.get("limit") or MAX_CANDLES)
        except ValueError:
            self._error(400, "INVALID_ARGUMENT", "start, end and limit must be integers")
            return
        if end < start or limit < 1 or limit > MAX_CANDLES:
            self._error(400, "INVALID_ARGUMENT", "start and end argument is invalid")
            return
        if (end - start) // step + 1 > MAX_CANDLES:
            self._error(
                400,
                "INVALID_ARGUMENT",
                "start and end argument is invalid - number of candles requested should be "
                f"less than {MAX_CANDLES}",
            )
            return
        if step < product.step_s or step % product.step_s:
            self._error(400, "INVALID_ARGUMENT", f"this fake holds {product.step_s}s candles only")
            return
        rows = _window(product, start, end, step, self.server.now_ms)
        candles = [
            {"start": str(s), "low": _num(lo), "high": _num(h), "open": _num(o),
             "close": _num(c), "volume": _num(v)}
            for s, o, h, lo, c, v in reversed(rows[-limit:])
        ]  # fmt: skip
        self._send(200, {"candles": candles})


def _window(
    product: _Product, start: int, end: int, step: int, now_ms: int | None
) -> list[tuple[int, float, float, float, float, float]]:
    """Candles of ``step`` seconds starting in ``[start, end]``, oldest first (aggregated)."""
    first = start - start % step
    rows = [r for r in product.rows if first <= r[0] < end + step]
    if now_ms is not None:
        rows = [r for r in rows if r[0] * 1000 <= now_ms]
    if step == product.step_s:
        return [r for r in rows if start <= r[0] <= end]
    buckets: dict[int, list[tuple[int, float, float, float, float, float]]] = {}
    for r in rows:
        buckets.setdefault(r[0] - r[0] % step, []).append(r)
    out = []
    for b in sorted(buckets):
        if not start <= b <= end:
            continue
        rs = buckets[b]
        out.append(
            (b, rs[0][1], max(x[2] for x in rs), min(x[3] for x in rs), rs[-1][4],
             sum(x[5] for x in rs))
        )  # fmt: skip
    return out


@contextlib.contextmanager
def running_fake_coinbase(
    candles: Mapping[str, pl.DataFrame] | None = None,
    *,
    interval: str = "1h",
    now_ms: int | None = None,
    balances: Mapping[str, float] | None = None,
    rules: Mapping[str, ProductRules] | None = None,
    api_key: str | None = None,
    public_key: Any = None,
    dedupe: bool = False,
) -> Iterator[FakeCoinbase]:
    """Start a :class:`FakeCoinbase` on an ephemeral 127.0.0.1 port serving ``candles``; the
    account holds ``balances`` and checks ``api_key`` (and, given, signatures against
    ``public_key``) on signed calls (see :mod:`trading_pipeline_tests.fakes.coinbase_orders`)."""
    server = FakeCoinbase()
    server.now_ms = now_ms
    server.book = CoinbaseBook(
        balances=dict(balances) if balances is not None else {"USD": 10_000.0},
        rules=dict(rules or {}),
        api_key=api_key,
        public_key=public_key,
        dedupe=dedupe,
    )
    for product_id, df in (candles or {}).items():
        server.set_candles(product_id, df, interval=interval)
    thread = threading.Thread(target=server.serve_forever, name="fake-coinbase", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
