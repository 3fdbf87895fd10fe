"""The live broker on Coinbase Advanced Trade (ccxt ``coinbase``) against the fake: the exact
request bodies, quote-sized buys and base-sized sells booked from the venue's fill, increments
and minimums checked before sending, final refusals, no stop-market, keys never shown. The
fault matrix shared with Binance is test_broker_fault_matrix.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import ccxt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trading_pipeline.bots.broker import MarketRules, OrderRequest
from trading_pipeline.bots.ccxt_broker import CcxtBroker, Credentials
from trading_pipeline.bots.venue_coinbase import CoinbaseVenue
from trading_pipeline.errors import UserInputError
from trading_pipeline.retrying import RetryPolicy
from trading_pipeline.venues.exchange import make_exchange
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.coinbase import FakeCoinbase, running_fake_coinbase
from trading_pipeline_tests.fakes.coinbase_orders import TAKER_FEE, ProductRules

pytestmark = pytest.mark.slow  # a local HTTP server (the fake venue)

KEY = "organizations/fake-org/apiKeys/cb-key-42"
PRIVATE = ec.generate_private_key(ec.SECP256R1())
SECRET = PRIVATE.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
).decode()
CREDS = Credentials(KEY, SECRET)
ORDERS = "/api/v3/brokerage/orders"
RULES = ProductRules(base_increment=0.00001, base_min_size=0.0001, quote_min_size=5.0)


@pytest.fixture
def srv() -> Iterator[FakeCoinbase]:
    with running_fake_coinbase(
        {"BTC-USD": make_bars(200, price=30_000.0)},
        balances={"USD": 1_000.0},
        rules={"BTC-USD": RULES},
        api_key=KEY,
        public_key=PRIVATE.public_key(),
    ) as s:
        s.set_price("BTC-USD", 30_000.0)
        yield s


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert KEY not in text and SECRET.splitlines()[1] not in text, record.getMessage()


def broker(srv: FakeCoinbase, sleeps: list[float] | None = None) -> CcxtBroker:
    return CcxtBroker.connect(
        "coinbase",
        CREDS,
        base_url=srv.url,
        timeout_ms=2000,
        retry=RetryPolicy(attempts=3, base_s=0.5, max_s=2.0, jitter_s=0.0),
        sleep=(sleeps if sleeps is not None else []).append,
    )


def _bodies(srv: FakeCoinbase) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in srv.requests_to(ORDERS, "POST")]


def test_quote_sized_buy_and_base_sized_sell_book_the_venues_fill(srv: FakeCoinbase) -> None:
    b = broker(srv)
    assert b.market_rules("BTC-USD") == MarketRules(0.00001, 0.0001, 5.0)
    buy = b.submit(OrderRequest("cb-1-buy", "BTC-USD", "buy", 0.01))
    # the body Coinbase documents: our client order id (not ccxt's own), quote_size = qty × price
    assert _bodies(srv) == [
        {
            "client_order_id": "cb-1-buy",
            "product_id": "BTC-USD",
            "side": "BUY",
            "order_configuration": {"market_market_ioc": {"quote_size": "300"}},
        }
    ]
    value = 300.0 / (1 + TAKER_FEE)  # the fee is inside the quote spent
    assert buy.status == "filled" and buy.fee_currency == "USD"
    assert buy.filled_qty == pytest.approx(value / 30_000.0, rel=1e-7)  # 10 decimals
    assert buy.avg_price == pytest.approx(30_000.0)
    assert buy.fee == pytest.approx(300.0 - value, rel=1e-7)
    assert buy.exchange_order_id == srv.book.orders[0].order_id
    assert b.balances()["USD"] == pytest.approx(700.0)
    # a sell is cut to base_increment and to what the account holds
    sell = b.submit(OrderRequest("cb-1-sell", "BTC-USD", "sell", 0.012345678))
    assert _bodies(srv)[1]["order_configuration"] == {"market_market_ioc": {"base_size": "0.00994"}}
    assert sell.filled_qty == pytest.approx(0.00994)
    assert sell.fee == pytest.approx(0.00994 * 30_000.0 * TAKER_FEE)
    # the same ids again, from this broker and from a restarted one: no new order
    assert b.submit(OrderRequest("cb-1-buy", "BTC-USD", "buy", 0.01)) == buy
    again = broker(srv).submit(OrderRequest("cb-1-sell", "BTC-USD", "sell", 0.012345678))
    assert again.exchange_order_id == sell.exchange_order_id and again.fee == pytest.approx(
        sell.fee
    )
    assert len(srv.book.orders) == 2 and b.fetch_order("never-sent", "BTC-USD") is None


def test_increments_and_minimums_are_checked_before_sending(srv: FakeCoinbase) -> None:
    b = broker(srv)
    tiny = b.submit(OrderRequest("t-1", "BTC-USD", "buy", 0.000001))
    assert tiny.status == "rejected" and "precision" in tiny.reason
    small = b.submit(OrderRequest("t-2", "BTC-USD", "buy", 0.00015))  # 4.50 USD < 5 USD
    assert small.status == "rejected" and "below BTC/USD's minimum 5" in small.reason
    unknown = b.submit(OrderRequest("t-3", "ETH-USD", "buy", 1.0))
    assert unknown.status == "rejected" and "not traded" in unknown.reason
    stop = b.submit(OrderRequest("t-4", "BTC-USD", "sell", 0.01, type="stop", stop_price=20_000))
    assert stop.status == "rejected" and "no stop-market" in stop.reason
    assert srv.requests_to(ORDERS, "POST") == []


def test_a_venue_refusal_is_final_and_never_retried(srv: FakeCoinbase) -> None:
    """The venue's own rules stricter than the loaded market: ``"success": false`` placed
    nothing, so it is a rejection with the venue's reason, sent once."""
    sleeps: list[float] = []
    b = broker(srv, sleeps)
    b.market_rules("BTC-USD")  # markets loaded with the lenient rules
    srv.book.rules["BTC-USD"] = ProductRules(quote_min_size=500.0)
    res = b.submit(OrderRequest("r-1", "BTC-USD", "buy", 0.01))
    assert res.status == "rejected" and "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL" in res.reason
    funds = b.submit(OrderRequest("r-2", "BTC-USD", "sell", 0.01))  # holds no BTC: cut to 0
    assert funds.status == "rejected" and "below" in funds.reason  # refused locally
    assert len(srv.requests_to(ORDERS, "POST")) == 1 and sleeps == [] and srv.book.orders == []


def test_a_blind_resend_would_double_here(srv: FakeCoinbase) -> None:
    """The control for the fault matrix: this fake takes a repeated client_order_id as a new
    order (the worst case), so only the broker's lookup keeps orders single."""
    ex = make_exchange("coinbase", base_url=srv.url, api_key=KEY, secret=SECRET)
    for _ in range(2):
        ex.create_order("BTC/USD", "market", "buy", 0.001, 30_000.0, {"client_order_id": "dup"})
    assert [o.client_order_id for o in srv.book.orders] == ["dup", "dup"]


def test_keys_refused_shown_nowhere_and_never_live_by_default(srv: FakeCoinbase) -> None:
    assert KEY not in repr(CREDS) and SECRET not in str(CREDS)
    b = broker(srv)
    assert KEY not in repr(b) and b.live is False
    with pytest.raises(UserInputError, match="without --live"):
        CcxtBroker.connect("coinbase", CREDS)
    # an unsigned (or wrongly signed) request is a 401 from the venue: ccxt's AuthenticationError
    ex = make_exchange("coinbase", base_url=srv.url)
    with pytest.raises(ccxt.AuthenticationError):
        ex.fetch2("brokerage/accounts", ["v3", "public"], "GET", {})  # no Authorization header


class _NotListedYet:
    """A ccxt stand-in whose venue has placed the order but does not list it yet."""

    def fetch_order(self, order_id: str, symbol: str) -> dict[str, object]:
        raise ccxt.ExchangeError('coinbase {"error": "NOT_FOUND", "message": "not found"}')


def test_an_order_not_listed_yet_or_pending_stays_open_never_final() -> None:
    venue, market = CoinbaseVenue(), {"symbol": "BTC/USD", "id": "BTC-USD"}
    created = {"id": "o-1", "clientOrderId": "c-1", "status": None, "filled": None}
    got = venue.complete(_NotListedYet(), market, created)  # type: ignore[arg-type]
    assert got["status"] == "open" and got["id"] == "o-1"
    pending = venue.complete(_NotListedYet(), market, {**created, "status": "PENDING"})  # type: ignore[arg-type]
    assert pending["status"] == "open"
