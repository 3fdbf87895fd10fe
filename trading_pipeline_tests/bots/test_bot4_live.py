"""bot4 live, end to end against both fakes: Binance US (the fake Binance at its own address) and
Coinbase Advanced Trade, each with its own keys and its own balances.

The runner buys each venue's inventory, then on a spread buys on the cheap venue and sells on
the dear one within what each venue holds (nothing moves between venues); the ledger, its
per-venue positions and the two venues' balances agree; a restart sends nothing again. The
same path through ``bot run --bot bot4 --live`` (a subprocess, keys and URLs from the
environment) funds both venues at start and stops on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trading_pipeline.bots.assignment import Assignment, RiskLimits
from trading_pipeline.bots.ccxt_broker import Credentials
from trading_pipeline.bots.clock import to_ms
from trading_pipeline.bots.ledger import Ledger
from trading_pipeline.bots.live_venues import connect_live
from trading_pipeline.bots.runner import BotRunner
from trading_pipeline.retrying import RetryPolicy
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.binance import running_fake_binance
from trading_pipeline_tests.fakes.coinbase import running_fake_coinbase

pytestmark = pytest.mark.slow  # local HTTP servers, a subprocess

A, B = "binanceus:BTCUSDT", "coinbase:BTCUSD"
BU_KEY, BU_SECRET = "bu-key-0123456789abcdef", "bu-secret-fedcba9876543210"
CB_KEY = "organizations/fake-org/apiKeys/bot4-key"
CB_PRIVATE = ec.generate_private_key(ec.SECP256R1())
CB_SECRET = CB_PRIVATE.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
).decode()
CREDS = {"binanceus": Credentials(BU_KEY, BU_SECRET), "coinbase": Credentials(CB_KEY, CB_SECRET)}
N = 260
SPREAD = 0.015  # venue b 150 bps dear on the last bar: past 10 + 60 bps fees, slippage, threshold
PARAMS = {
    "threshold_bps": 5.0,
    "fee_a_bps": 10.0,
    "fee_b_bps": 60.0,
    "slippage_bps": 2.0,
    "rebalance_bars": 0,
    "max_use": 0.5,
}


def _frames(end: datetime) -> dict[str, pl.DataFrame]:
    """``N`` hourly bars ending at ``end`` (the wall clock's hour: ccxt's Coinbase candle window
    is counted back from the real time); venue b equals venue a but on the last bar."""
    a = make_bars(N, seed=11, vol=0.002, start=end - timedelta(hours=N), price=30_000.0)
    bump = pl.Series([0.0] * (N - 1) + [SPREAD])
    b = a.with_columns(
        *[(pl.col(c) * (1.0 + bump)).alias(c) for c in ("open", "high", "low", "close")]
    )
    return {A: a, B: b}


def _assignment() -> Assignment:
    fam = get_family("arbitrage")
    risk = RiskLimits(daily_loss=0.5, max_position_fraction=1.0, max_drawdown=0.9)
    return Assignment("bot4", 1, (A, B), "1h", "arbitrage", 1, fam.validate(PARAMS), 0.15, risk)


class _FixedClock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def sleep_until(self, ms: int) -> bool:
        return False


@pytest.fixture
def venues() -> Iterator[tuple[Any, Any, dict[str, pl.DataFrame]]]:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    frames = _frames(end)
    with ExitStack() as stack:
        bu = stack.enter_context(
            running_fake_binance(
                {("BTCUSDT", "1h"): frames[A]},
                balances={"USDT": 150.0},
                api_key=BU_KEY,
                secret=BU_SECRET,
            )
        )
        cb = stack.enter_context(
            running_fake_coinbase(
                {"BTC-USD": frames[B]},
                balances={"USD": 150.0},
                api_key=CB_KEY,
                public_key=CB_PRIVATE.public_key(),
            )
        )
        yield bu, cb, frames


def _venue_books(bu: Any, cb: Any) -> dict[str, float]:
    out = {f"binanceus:{k}": v for k, v in bu.balances.items()}
    out.update({f"coinbase:{k}": v for k, v in cb.book.balances.items()})
    return out


def test_bot4_live_buys_cheap_sells_dear_within_each_venue(
    venues: tuple[Any, Any, dict[str, pl.DataFrame]], tmp_path: Path
) -> None:
    bu, cb, frames = venues
    last_open = to_ms(frames[A]["open_time"][-1])
    step1, step2 = last_open + 5_000, last_open + 3_600_000 + 5_000  # after bars N-2, N-1 close

    def runner_at(now: int) -> tuple[BotRunner, Ledger]:
        bu.set_now(now)
        cb.now_ms = now
        broker, candles = connect_live(
            ("binanceus", "coinbase"),
            (A, B),
            CREDS,
            {"binanceus": bu.url, "coinbase": cb.url},
            retry=RetryPolicy(attempts=3, base_s=0.1, max_s=0.2, jitter_s=0.0),
            sleep=lambda s: None,
        )
        assert broker.live is False  # local venues are never live
        ledger = Ledger(tmp_path / "bot4" / "live" / "ledger.sqlite")
        runner = BotRunner(
            "bot4",
            ledger=ledger,
            broker=broker,
            candles=candles,
            clock=_FixedClock(now),
            assignments=_assignment,
            initial_cash=300.0,
        )
        return runner, ledger

    runner, ledger = runner_at(step1)
    assert runner.step(step1) is True  # the first step buys each venue's inventory
    assert [(o.side, o.type) for o in bu.orders] == [("BUY", "MARKET")]
    assert [(o.side, o.config) for o in cb.book.orders] == [
        (
            "BUY",
            {
                "market_market_ioc": {
                    "quote_size": cb.book.orders[0].config["market_market_ioc"]["quote_size"]
                }
            },
        )
    ]
    bu.set_now(step2)
    cb.now_ms = step2
    assert runner.step(step2) is True  # the spread: buy on Binance US, sell on Coinbase
    assert [o.side for o in bu.orders] == ["BUY", "BUY"]
    assert [o.side for o in cb.book.orders] == ["BUY", "SELL"]
    fills = ledger.fills().join(
        ledger.orders().select("client_order_id", "reason"), on="client_order_id"
    )
    assert fills["reason"].to_list() == ["inventory", "inventory", "arbitrage", "arbitrage"]
    arb = fills.filter(pl.col("reason") == "arbitrage")
    sides = dict(zip(arb["symbol"].to_list(), arb["side"].to_list(), strict=True))
    assert sides == {A: "buy", B: "sell"}
    # the same units on both legs, half the sell venue's inventory (max_use 0.5)
    sold = cb.book.orders[1].filled_size
    assert bu.orders[1].executed_qty == pytest.approx(sold, abs=1e-5)  # Binance's 0.00001 lot
    assert sold == pytest.approx(0.5 * cb.book.orders[0].filled_size, rel=1e-6, abs=1e-8)
    # the ledger's per-venue positions are what each venue holds; its cash the two quotes at par
    books = _venue_books(bu, cb)
    pos = ledger.positions()
    assert pos[A] == pytest.approx(books["binanceus:BTC"], abs=1e-9)
    assert pos[B] == pytest.approx(books["coinbase:BTC"], abs=1e-9)
    assert ledger.cash() == pytest.approx(books["binanceus:USDT"] + books["coinbase:USD"], abs=0.02)
    assert min(books.values()) >= 0.0  # each leg within its own venue's balance
    runner.close()
    # a restart on the same bar: nothing is sent again
    again, ledger2 = runner_at(step2)
    assert again.step(step2) is False
    assert (len(bu.orders), len(cb.book.orders)) == (2, 2)
    ledger2.close()
    again.lock.release()


def test_bot_run_live_funds_both_venues_and_stops(
    venues: tuple[Any, Any, dict[str, pl.DataFrame]], tmp_path: Path
) -> None:
    """``bot run --bot bot4 --live``: keys per venue from the environment, local URLs, the
    deployed arbitrage assignment; at start it buys each venue's inventory through ccxt."""
    from trading_pipeline.bots.deploy_store import DeploymentStore

    bu, cb, _ = venues
    assert DeploymentStore(tmp_path / "bots").deploy([_assignment()]).ok
    env = {
        **os.environ,
        "TP_DATA_DIR": str(tmp_path / "data"),
        "TP_BOTS_DIR": str(tmp_path / "bots"),
        "TP_BINANCEUS_URL": bu.url,
        "TP_COINBASE_URL": cb.url,
        "TP_BINANCEUS_API_KEY": BU_KEY,
        "TP_BINANCEUS_API_SECRET": BU_SECRET,
        "TP_COINBASE_API_KEY": CB_KEY,
        "TP_COINBASE_API_SECRET": CB_SECRET.replace("\n", "\\n"),  # one line, as in a .env file
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "trading_pipeline.cli", "bot", "run", "--bot", "bot4", "--live"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if bu.orders and cb.book.orders:
                break
            time.sleep(0.2)
        time.sleep(1.0)  # the ledger books the inventory before the runner sleeps
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert BU_SECRET not in out and CB_SECRET.splitlines()[1] not in out
    assert [o.client_order_id.startswith("bot4-") for o in bu.orders] == [True]
    assert len(cb.book.orders) == 1 and cb.book.orders[0].side == "BUY"
    ledger = tmp_path / "bots" / "bot4" / "live" / "ledger.sqlite"
    with sqlite3.connect(ledger) as db:
        rows = db.execute(
            "select f.symbol, o.reason from fills f join orders o using (client_order_id) "
            "order by f.symbol"
        ).fetchall()
    assert rows == [(A, "inventory"), (B, "inventory")]
