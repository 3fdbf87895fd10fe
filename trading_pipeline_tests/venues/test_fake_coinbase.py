"""The fake Coinbase speaks Advanced Trade's public REST the way ccxt's ``coinbase`` reads it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import ccxt
import httpx
import polars as pl
import pytest

from trading_pipeline.venues.exchange import make_exchange
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.coinbase import MAX_CANDLES, FakeCoinbase, running_fake_coinbase

pytestmark = pytest.mark.slow  # a local HTTP server (the fake venues)

START = datetime(2024, 1, 1, tzinfo=UTC)
T0 = int(START.timestamp())
CANDLES = "/api/v3/brokerage/market/products/BTC-USD/candles"


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars(1000, seed=7, start=START, price=40_000.0)


@pytest.fixture
def srv(bars: pl.DataFrame) -> Iterator[FakeCoinbase]:
    with running_fake_coinbase({"BTC-USD": bars, "ETH-USD": bars.head(5)}) as server:
        yield server


def test_raw_candles_are_strings_newest_first_within_start_end(srv: FakeCoinbase) -> None:
    q = {"start": str(T0), "end": str(T0 + 9 * 3600), "granularity": "ONE_HOUR"}
    body = httpx.get(srv.url + CANDLES, params=q).json()
    candles = body["candles"]
    assert [int(c["start"]) for c in candles] == [T0 + h * 3600 for h in range(9, -1, -1)]
    assert all(isinstance(v, str) for c in candles for v in c.values())
    assert set(candles[0]) == {"start", "low", "high", "open", "close", "volume"}


def test_more_than_350_candles_or_bad_arguments_are_400s(srv: FakeCoinbase) -> None:
    too_many = {"start": str(T0), "end": str(T0 + MAX_CANDLES * 3600), "granularity": "ONE_HOUR"}
    r = httpx.get(srv.url + CANDLES, params=too_many)
    assert r.status_code == 400 and r.json()["error"] == "INVALID_ARGUMENT"
    assert "350" in r.json()["message"]
    ok = {**too_many, "end": str(T0 + (MAX_CANDLES - 1) * 3600)}
    assert len(httpx.get(srv.url + CANDLES, params=ok).json()["candles"]) == MAX_CANDLES
    bad = httpx.get(srv.url + CANDLES, params={**ok, "granularity": "ONE_WEEK"})
    assert bad.status_code == 400
    assert httpx.get(srv.url + CANDLES.replace("BTC-USD", "XYZ-USD"), params=ok).status_code == 404


def test_coarser_granularity_is_aggregated(srv: FakeCoinbase, bars: pl.DataFrame) -> None:
    q = {"start": str(T0), "end": str(T0 + 86400), "granularity": "SIX_HOUR"}
    candles = httpx.get(srv.url + CANDLES, params=q).json()["candles"]
    assert [int(c["start"]) for c in candles] == [T0 + h * 3600 for h in (24, 18, 12, 6, 0)]
    first = bars.head(6)
    oldest = candles[-1]
    assert float(oldest["open"]) == first["open"][0]
    assert float(oldest["close"]) == first["close"][-1]
    assert float(oldest["high"]) == first["high"].max()
    assert float(oldest["low"]) == first["low"].min()


def test_ccxt_loads_markets_and_parses_candles_exactly(
    srv: FakeCoinbase, bars: pl.DataFrame
) -> None:
    ex = make_exchange("coinbase", base_url=srv.url)
    markets = ex.load_markets()
    assert {"BTC/USD", "ETH/USD"} <= set(markets)
    assert markets["BTC/USD"]["id"] == "BTC-USD" and markets["BTC/USD"]["spot"]
    rows = ex.fetch_ohlcv("BTC/USD", "1h", since=T0 * 1000, limit=300)
    assert len(rows) == 300  # ccxt's own cap per call
    expected = bars.head(300)
    assert [r[0] for r in rows] == [int(t.timestamp() * 1000) for t in expected["open_time"]]
    assert [r[4] for r in rows] == expected["close"].to_list()
    assert [r[5] for r in rows] == expected["volume"].to_list()
    candle_calls = srv.candle_requests()
    assert candle_calls[-1].query["granularity"] == "ONE_HOUR"
    assert candle_calls[-1].query["start"] == str(T0)


def test_a_429_is_ccxt_rate_limit_exceeded_then_the_next_call_works(srv: FakeCoinbase) -> None:
    ex = make_exchange("coinbase", base_url=srv.url)
    ex.load_markets()
    srv.add_fault(429, times=1)
    with pytest.raises(ccxt.RateLimitExceeded):
        ex.fetch_ohlcv("BTC/USD", "1h", since=T0 * 1000, limit=10)
    assert len(ex.fetch_ohlcv("BTC/USD", "1h", since=T0 * 1000, limit=10)) == 10


def test_now_hides_candles_that_have_not_opened(srv: FakeCoinbase) -> None:
    srv.now_ms = (T0 + 5 * 3600) * 1000
    q = {"start": str(T0), "end": str(T0 + 20 * 3600), "granularity": "ONE_HOUR"}
    candles = httpx.get(srv.url + CANDLES, params=q).json()["candles"]
    assert int(candles[0]["start"]) == T0 + 5 * 3600 and len(candles) == 6
