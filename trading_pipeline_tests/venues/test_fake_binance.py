"""The fake Binance server through real ccxt: markets, klines, tickers, orders and faults."""

from __future__ import annotations

from datetime import UTC, datetime

import ccxt
import polars as pl
import pytest

from trading_pipeline.venues.exchange import make_exchange
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.binance import (
    Fault,
    MarketRules,
    running_fake_binance,
    split_symbol,
)

pytestmark = pytest.mark.slow  # a local HTTP server (the fake venues)

KEY, SECRET = "test-key", "test-secret"
START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def bars() -> pl.DataFrame:
    return make_bars(1200, price=30_000.0, start=START)


def _ex(url: str, **kw: object) -> ccxt.Exchange:
    return make_exchange("binance", base_url=url, api_key=KEY, secret=SECRET, **kw)  # type: ignore[arg-type]


def test_markets_from_exchange_info_carry_precision_and_limits(bars: pl.DataFrame) -> None:
    rules = {"ETHUSDT": MarketRules(tick_size=0.1, step_size=0.001, min_qty=0.001, min_notional=10)}
    with running_fake_binance({"BTCUSDT": bars}, symbols=["ETHUSDT"], rules=rules) as srv:
        ex = make_exchange("binance", base_url=srv.url)
        markets = ex.load_markets()
        assert set(markets) == {"BTC/USDT", "ETH/USDT"}
        eth = markets["ETH/USDT"]
        assert eth["spot"] and eth["active"]
        assert eth["precision"]["amount"] == 0.001 and eth["precision"]["price"] == 0.1
        assert eth["limits"]["amount"]["min"] == 0.001 and eth["limits"]["cost"]["min"] == 10
        assert ex.amount_to_precision("ETH/USDT", 1.23456) == "1.234"
        # spot only: nothing but exchangeInfo was asked for
        assert {r.path for r in srv.requests} == {"/api/v3/exchangeInfo"}


def test_klines_round_trip_the_frame_and_page_by_time(bars: pl.DataFrame) -> None:
    with running_fake_binance({"spot-BTCUSDT-1h": bars}) as srv:
        ex = make_exchange("binance", base_url=srv.url)
        first = ex.fetch_ohlcv("BTC/USDT", "1h", since=int(START.timestamp() * 1000), limit=1000)
        assert len(first) == 1000
        rest = ex.fetch_ohlcv("BTC/USDT", "1h", since=first[-1][0] + 1, limit=1000)
        got = first + rest
        assert len(got) == bars.height
        assert [r[0] for r in got] == bars["open_time"].dt.epoch("ms").to_list()
        assert [r[4] for r in got] == pytest.approx(bars["close"].to_list(), rel=1e-8)
        latest = ex.fetch_ohlcv("BTC/USDT", "1h", limit=3)
        assert [r[4] for r in latest] == pytest.approx(bars["close"].tail(3).to_list(), rel=1e-8)
        assert ex.fetch_ohlcv("BTC/USDT", "5m", limit=3) == []  # no frame for that interval
        q = srv.requests_to("/api/v3/klines")[0].query
        assert q["symbol"] == "BTCUSDT" and q["interval"] == "1h"


def test_now_override_hides_future_bars_and_sets_the_ticker(bars: pl.DataFrame) -> None:
    with running_fake_binance() as srv:
        srv.set_klines("BTCUSDT", "1h", bars)
        now = bars["open_time"][99]
        srv.set_now(now)
        ex = make_exchange("binance", base_url=srv.url)
        got = ex.fetch_ohlcv("BTC/USDT", "1h", limit=5)
        assert got[-1][0] == int(now.timestamp() * 1000)  # the bar containing "now" is the open one
        assert ex.fetch_ticker("BTC/USDT")["last"] == pytest.approx(bars["close"][99])
        assert ex.fetch_time() == int(now.timestamp() * 1000)
        book = ex.fetch_order_book("BTC/USDT", limit=5)
        assert book["bids"][0][0] < bars["close"][99] < book["asks"][0][0]


def test_market_order_fills_with_fees_and_moves_balances(bars: pl.DataFrame) -> None:
    with running_fake_binance({"BTCUSDT": bars}, api_key=KEY, secret=SECRET) as srv:
        ex = _ex(srv.url)
        price = bars["close"][-1]
        o = ex.create_order("BTC/USDT", "market", "buy", 0.1, params={"newClientOrderId": "c1"})
        assert o["status"] == "closed" and o["filled"] == pytest.approx(0.1)
        assert o["average"] == pytest.approx(price) and o["clientOrderId"] == "c1"
        assert o["fee"] == {"currency": "BTC", "cost": pytest.approx(0.0001)}
        bal = ex.fetch_balance()["free"]
        assert bal["BTC"] == pytest.approx(0.0999)
        assert bal["USDT"] == pytest.approx(10_000 - 0.1 * price)
        again = ex.fetch_order(None, "BTC/USDT", params={"origClientOrderId": "c1"})
        assert again["id"] == o["id"] and again["status"] == "closed"
        trades = ex.fetch_my_trades("BTC/USDT", params={"orderId": o["id"]})
        assert len(trades) == 1 and trades[0]["fee"]["cost"] == pytest.approx(0.0001)
        sell = ex.create_order("BTC/USDT", "market", "sell", 0.05)
        assert sell["fee"]["currency"] == "USDT"
        assert len(srv.orders) == 2 and srv.orders[0].client_order_id == "c1"


def test_limit_orders_rest_and_cancel(bars: pl.DataFrame) -> None:
    with running_fake_binance({"BTCUSDT": bars}) as srv:
        ex = _ex(srv.url)
        o = ex.create_order("BTC/USDT", "limit", "buy", 0.01, 1000.0, {"newClientOrderId": "L1"})
        assert o["status"] == "open"
        assert [x["id"] for x in ex.fetch_open_orders("BTC/USDT")] == [o["id"]]
        with pytest.raises(ccxt.InvalidOrder, match="Duplicate"):
            ex.create_order("BTC/USDT", "limit", "buy", 0.01, 1000.0, {"newClientOrderId": "L1"})
        assert ex.cancel_order(o["id"], "BTC/USDT")["status"] == "canceled"
        assert ex.fetch_open_orders("BTC/USDT") == []
        with pytest.raises(ccxt.OrderNotFound):
            ex.cancel_order(o["id"], "BTC/USDT")


def test_exchange_rules_and_balance_rejections_map_to_ccxt_errors(bars: pl.DataFrame) -> None:
    with running_fake_binance({"BTCUSDT": bars}, balances={"USDT": 100.0}) as srv:
        ex = _ex(srv.url)
        with pytest.raises(ccxt.InsufficientFunds):
            ex.create_order("BTC/USDT", "market", "buy", 1.0)
        with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):  # below the 5 USDT notional
            ex.create_order("BTC/USDT", "market", "buy", 0.00001)
        with pytest.raises(ccxt.OrderNotFound):
            ex.fetch_order("424242", "BTC/USDT")
        assert srv.orders == []


def test_injected_faults(bars: pl.DataFrame) -> None:
    with running_fake_binance({"BTCUSDT": bars}) as srv:
        ex = _ex(srv.url, timeout_ms=300)
        ex.load_markets()
        srv.add_fault(Fault.insufficient_balance())
        with pytest.raises(ccxt.InsufficientFunds):
            ex.create_order("BTC/USDT", "market", "buy", 0.01)
        srv.add_fault(Fault.rate_limit(status=429))
        with pytest.raises(ccxt.DDoSProtection, match="429"):
            ex.create_order("BTC/USDT", "market", "buy", 0.01)
        srv.add_fault(Fault.rate_limit(status=418, path="/api/v3/klines"))
        with pytest.raises(ccxt.DDoSProtection, match="418"):
            ex.fetch_ohlcv("BTC/USDT", "1h", limit=2)
        srv.add_fault(Fault.server_error(status=503))
        with pytest.raises(ccxt.ExchangeNotAvailable):
            ex.create_order("BTC/USDT", "market", "buy", 0.01)
        srv.add_fault(Fault.reject(-2013, "Order does not exist.", method="GET"))
        with pytest.raises(ccxt.OrderNotFound):
            ex.fetch_order("1", "BTC/USDT")
        assert srv.orders == []  # none of the faulted orders was placed
        srv.add_fault(Fault.slow(1.0))  # processed, then answered too late
        with pytest.raises(ccxt.RequestTimeout):
            ex.create_order("BTC/USDT", "market", "buy", 0.01, params={"newClientOrderId": "t1"})
        assert [(o.client_order_id, o.status) for o in srv.orders] == [("t1", "FILLED")]
        # like Binance, a filled order's client id may be reused: blind re-sending doubles
        ex.create_order("BTC/USDT", "market", "buy", 0.01, params={"newClientOrderId": "t1"})
        assert len(srv.orders) == 2
        assert ex.fetch_ohlcv("BTC/USDT", "1h", limit=2)  # faults are used up


def test_signature_and_key_checks(bars: pl.DataFrame) -> None:
    with running_fake_binance({"BTCUSDT": bars}, api_key=KEY, secret=SECRET) as srv:
        wrong = make_exchange("binance", base_url=srv.url, api_key=KEY, secret="nope")
        with pytest.raises(ccxt.AuthenticationError):
            wrong.fetch_balance()
        other = make_exchange("binance", base_url=srv.url, api_key="other", secret=SECRET)
        with pytest.raises(ccxt.AuthenticationError):
            other.fetch_balance()
        assert _ex(srv.url).fetch_balance()["total"]["USDT"] == 10_000.0


def test_binanceus_speaks_the_same_format(bars: pl.DataFrame) -> None:
    with running_fake_binance({"BTCUSDT": bars}) as srv:
        ex = make_exchange("binanceus", base_url=srv.url)
        assert len(ex.fetch_ohlcv("BTC/USDT", "1h", limit=7)) == 7


def test_split_symbol() -> None:
    assert split_symbol("BTCUSDT") == ("BTC", "USDT")
    assert split_symbol("ETHBTC") == ("ETH", "BTC")
    assert split_symbol("BTCFDUSD") == ("BTC", "FDUSD")
    with pytest.raises(ValueError):
        split_symbol("USDT")
