"""The live broker against the fake Binance server: fills, rejections, timeouts and rate limits
without double orders, local minimum checks, and no secret in any log or exception."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.bots.broker import Broker, CredentialsRefused, OrderRequest
from trading_pipeline.bots.ccxt_broker import (
    BrokerUnavailable,
    CcxtBroker,
    Credentials,
    RetryPolicy,
)
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import conform
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.binance import FakeBinance, Fault, running_fake_binance

pytestmark = pytest.mark.slow  # a local HTTP server (the fake venues)

KEY = "live-key-0123456789abcdef"
SECRET = "live-secret-fedcba9876543210"
CREDS = Credentials(KEY, SECRET)


@pytest.fixture
def srv() -> Iterator[FakeBinance]:
    bars = make_bars(200, price=30_000.0)
    with running_fake_binance(
        {"BTCUSDT": bars}, balances={"USDT": 1_000.0}, api_key=KEY, secret=SECRET
    ) as s:
        yield s


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test logs at DEBUG (ccxt logs request headers there) and must leak nothing."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert KEY not in text and SECRET not in text, record.getMessage()


def broker(srv: FakeBinance, sleeps: list[float], timeout_ms: int = 2000) -> CcxtBroker:
    return CcxtBroker.connect(
        "binance",
        CREDS,
        base_url=srv.url,
        timeout_ms=timeout_ms,
        retry=RetryPolicy(attempts=4, base_s=0.5, max_s=4.0, jitter_s=0.0),
        sleep=sleeps.append,
    )


def buy(cid: str, qty: float = 0.01) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol="BTCUSDT", side="buy", qty=qty)


def test_filled_market_order_and_idempotent_resubmit(srv: FakeBinance) -> None:
    sleeps: list[float] = []
    b = broker(srv, sleeps)
    assert isinstance(b, Broker) and b.live is False
    price = srv.price("BTCUSDT")
    res = b.submit(buy("bot1-1-BTCUSDT-1-buy", 0.012345678))
    assert res.status == "filled"
    assert res.filled_qty == pytest.approx(0.01234)  # cut to the 0.00001 step
    assert res.avg_price == pytest.approx(price)
    assert res.fee == pytest.approx(0.01234 * 0.001) and res.fee_currency == "BTC"
    assert res.exchange_order_id == str(srv.orders[0].order_id)
    assert b.balances()["USDT"] == pytest.approx(1_000.0 - 0.01234 * price)
    # the same id again, from this broker and from a restarted one: no second order
    assert b.submit(buy("bot1-1-BTCUSDT-1-buy", 0.012345678)) == res
    restarted = broker(srv, sleeps)
    again = restarted.submit(buy("bot1-1-BTCUSDT-1-buy", 0.012345678))
    assert again.status == "filled" and again.filled_qty == pytest.approx(res.filled_qty)
    assert again.fee == pytest.approx(res.fee) and again.fee_currency == "BTC"  # from its trades
    assert len(srv.orders) == 1 and sleeps == []
    assert b.fetch_order("never-sent", "BTCUSDT") is None


def test_insufficient_balance_is_rejected_without_retry(srv: FakeBinance) -> None:
    sleeps: list[float] = []
    res = broker(srv, sleeps).submit(buy("too-big", 1.0))  # 30 000 USDT with 1 000
    assert res.status == "rejected" and res.filled_qty == 0.0
    assert "InsufficientFunds" in res.reason and "insufficient balance" in res.reason
    assert len(srv.requests_to("/api/v3/order", "POST")) == 1 and sleeps == []
    assert srv.orders == []


def test_injected_rejection_code_is_final(srv: FakeBinance) -> None:
    srv.add_fault(Fault.insufficient_balance())
    res = broker(srv, []).submit(buy("rej-1"))
    assert res.status == "rejected" and "insufficient balance" in res.reason
    assert srv.orders == []


def test_timeout_after_the_order_was_placed_returns_it_without_a_second_order(
    srv: FakeBinance,
) -> None:
    sleeps: list[float] = []
    srv.add_fault(Fault.slow(1.5, process=True))  # the venue fills it, the answer comes too late
    res = broker(srv, sleeps, timeout_ms=400).submit(buy("slow-1"))
    assert res.status == "filled" and res.filled_qty == pytest.approx(0.01)
    assert len(srv.orders) == 1 and srv.orders[0].client_order_id == "slow-1"
    assert len(srv.requests_to("/api/v3/order", "POST")) == 1  # found by lookup, not re-sent
    assert sleeps == [0.5]


def test_timeout_before_the_venue_saw_it_re_sends_once(srv: FakeBinance) -> None:
    sleeps: list[float] = []
    srv.add_fault(Fault.slow(1.5, process=False))  # lost: answered late and never processed
    res = broker(srv, sleeps, timeout_ms=400).submit(buy("lost-1"))
    assert res.status == "filled"
    assert len(srv.requests_to("/api/v3/order", "POST")) == 2
    assert [o.client_order_id for o in srv.orders] == ["lost-1"]


def test_rate_limit_waits_as_the_venue_asks_then_succeeds(srv: FakeBinance) -> None:
    sleeps: list[float] = []
    srv.add_fault(Fault.rate_limit(method="POST", status=429, times=2))
    res = broker(srv, sleeps).submit(buy("rl-1"))
    assert res.status == "filled"
    assert sleeps == [1.0, 1.0]  # the fake's Retry-After: 1, not the 0.5 s / 1 s backoff
    assert len(srv.requests_to("/api/v3/order", "POST")) == 3 and len(srv.orders) == 1


def test_venue_down_raises_broker_unavailable_after_retries(srv: FakeBinance) -> None:
    sleeps: list[float] = []
    srv.add_fault(Fault.server_error(status=503, times=100))
    with pytest.raises(BrokerUnavailable, match="gave up after 4 attempts") as info:
        broker(srv, sleeps).submit(buy("down-1"))
    assert sleeps == [0.5, 1.0, 2.0]  # backoff between the 4 attempts, none after the last
    assert srv.orders == []
    assert KEY not in str(info.value) and SECRET not in str(info.value)


def test_minimums_are_checked_before_sending(srv: FakeBinance) -> None:
    b = broker(srv, [])
    tiny = b.submit(buy("tiny-1", 0.000001))
    assert tiny.status == "rejected" and "precision" in tiny.reason
    small = b.submit(buy("small-1", 0.0001))  # about 3 USDT < 5 USDT notional
    assert small.status == "rejected" and "below BTC/USDT's minimum 5" in small.reason
    unknown = b.submit(OrderRequest("x-1", "DOGEUSDT", "buy", 10.0))
    assert unknown.status == "rejected" and "not traded" in unknown.reason
    assert srv.requests_to("/api/v3/order", "POST") == []


def test_keys_never_appear_in_reprs_exceptions_or_reasons(srv: FakeBinance) -> None:
    assert KEY not in repr(CREDS) and SECRET not in str(CREDS)
    # a venue error that quotes the key back must be scrubbed from the reason
    srv.add_fault(Fault.reject(-2010, f"rejected for key {KEY}"))
    b = broker(srv, [])
    assert KEY not in repr(b)
    res = b.submit(buy("echo-1"))
    assert res.status == "rejected" and KEY not in res.reason and "***" in res.reason
    wrong = CcxtBroker.connect("binance", Credentials(KEY, "not-the-secret"), base_url=srv.url)
    with pytest.raises(CredentialsRefused) as info:  # the lookup is signed too: refused
        wrong.submit(buy("auth-1"))
    assert "AuthenticationError" in str(info.value)
    assert SECRET not in str(info.value) and "not-the-secret" not in str(info.value)
    assert srv.requests_to("/api/v3/order", "POST")[-1].params.get("newClientOrderId") != "auth-1"
    # and the real venue is refused unless live is explicit
    with pytest.raises(UserInputError, match="without --live"):
        CcxtBroker.connect("binance", CREDS)


def test_credentials_from_env() -> None:
    env = {"TP_BINANCE_API_KEY": KEY, "TP_BINANCE_API_SECRET": SECRET}
    assert Credentials.from_env(env) == CREDS
    with pytest.raises(UserInputError, match="TP_BINANCE_API_SECRET") as info:
        Credentials.from_env({"TP_BINANCE_API_KEY": KEY})
    assert KEY not in str(info.value)
    with pytest.raises(UserInputError, match="no API key variables"):
        Credentials.from_env(env, venue="kraken")
    # Coinbase: a CDP key name and its PEM key, kept on one line with \n escapes in a .env file
    pem = "-----BEGIN EC PRIVATE KEY-----\\nMHcC\\n-----END EC PRIVATE KEY-----\\n"
    cb = {"TP_COINBASE_API_KEY": "organizations/o/apiKeys/k", "TP_COINBASE_API_SECRET": pem}
    got = Credentials.from_env(cb, venue="coinbase")
    assert got.secret.splitlines()[1] == "MHcC" and got.api_key == cb["TP_COINBASE_API_KEY"]
    with pytest.raises(UserInputError, match="TP_COINBASE_API_KEY"):
        Credentials.from_env({}, venue="coinbase")


class _FixedClock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def sleep_until(self, ms: int) -> bool:
        return False


def _crossing_bars() -> pl.DataFrame:
    """Hourly bars drifting down, the last one jumping up: SMA(2) crosses above SMA(3) there."""
    closes = [100.0 - 0.5 * i for i in range(40)] + [110.0]
    n = len(closes)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = [start + timedelta(hours=i) for i in range(n)]
    return conform(
        pl.DataFrame(
            {
                "open_time": times,
                "open": [closes[0], *closes[:-1]],
                "high": [c + 0.1 for c in closes],
                "low": [c - 0.1 for c in closes],
                "close": closes,
                "volume": [10.0] * n,
                "close_time": [t + timedelta(hours=1) - timedelta(milliseconds=1) for t in times],
            }
        )
    )


def test_runner_live_path_against_the_fake_venue(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot runner with the live broker and live candles, both ccxt against the fake: an SMA
    cross on the last closed bar buys once through a rate limit, the ledger books the venue's
    fill and fee, and a restarted runner re-stepping the same bar sends nothing."""
    from trading_pipeline.bots.assignment import default_assignment
    from trading_pipeline.bots.candles import ExchangeCandles
    from trading_pipeline.bots.ledger import Ledger
    from trading_pipeline.bots.lock import RunnerBusy
    from trading_pipeline.bots.runner import BotRunner

    bars = _crossing_bars()
    assignment = default_assignment("bot1").with_(
        version=1, symbols=("BTCUSDT",), params={"fast": 2, "slow": 3}
    )
    with running_fake_binance(
        {("BTCUSDT", "1h"): bars}, balances={"USDT": 1_000.0}, api_key=KEY, secret=SECRET
    ) as srv:
        last_open = bars["open_time"][-1]
        now = int(last_open.timestamp() * 1000) + 3_600_000 + 5_000  # 5 s after its close
        srv.set_now(now)
        srv.add_fault(Fault.rate_limit(method="POST", times=1))
        sleeps: list[float] = []

        def make_runner() -> tuple[BotRunner, Ledger]:
            b = broker(srv, sleeps)
            ledger = Ledger(tmp_path / "bot1" / "live" / "ledger.sqlite")
            runner = BotRunner(
                "bot1",
                ledger=ledger,
                broker=b,
                candles=ExchangeCandles(b.exchange),
                clock=_FixedClock(now),
                assignments=lambda: assignment,
                initial_cash=300.0,
            )
            return runner, ledger

        runner, ledger = make_runner()
        assert runner.step(now) is True
        # the buy, then the daily-loss stop resting at the venue, sized to the position
        assert [(o.side, o.type) for o in srv.orders] == [("BUY", "MARKET"), ("SELL", "STOP_LOSS")]
        assert srv.orders[1].status == "NEW" and srv.orders[1].stop_price < 110.0
        assert srv.orders[1].orig_qty == pytest.approx(srv.orders[0].executed_qty * 0.999, abs=1e-5)
        assert len(srv.requests_to("/api/v3/order", "POST")) == 3 and sleeps == [1.0]  # Retry-After
        qty = srv.orders[0].executed_qty
        assert ledger.positions() == {"BTCUSDT": pytest.approx(qty * (1 - 0.001))}  # fee in BTC
        assert ledger.cash() == pytest.approx(300.0 - qty * 110.0)
        assert 0 < 300.0 - qty * 110.0 < 1.0  # the whole budget, cut to the lot step
        with pytest.raises(RunnerBusy, match="already running"):  # one runner per bot and mode
            make_runner()
        runner.close()
        again, ledger2 = make_runner()  # a restart on the same bar
        assert again.step(now) is False
        assert len(srv.orders) == 2
        ledger2.close()
