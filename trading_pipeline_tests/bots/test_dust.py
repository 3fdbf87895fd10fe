"""Positions as the exchange sees them, on the fake Binance server (LOT_SIZE, the buy fee taken in
the coin): round trips leave dust that is flat for the strategy (re-entries happen, no unsellable
sell is sent), and a ledger holding more than the account blocks entries until acknowledged."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.backtest.synthetic import random_walk_bars
from trading_pipeline.bots.assignment import default_assignment
from trading_pipeline.bots.candles import FrameCandles
from trading_pipeline.bots.ccxt_broker import CcxtBroker, Credentials
from trading_pipeline.bots.clock import to_ms
from trading_pipeline.bots.ledger import Ledger
from trading_pipeline.bots.runner import ACK_FILE, BotRunner
from trading_pipeline_tests.fakes.binance import FakeBinance, MarketRules, running_fake_binance

from .test_live_stop import VenueClock

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("permissive_fleet")]  # bot1 on buy_and_hold

KEY, SECRET = "dust-key-0123456789", "dust-secret-9876543210"
H = 3_600_000


def _runner(
    srv: FakeBinance,
    bars: pl.DataFrame,
    tmp_path: Path,
    steps: int,
    family: str = "sma_cross",
    **kw: int,
) -> tuple[BotRunner, Ledger]:
    start = to_ms(bars["open_time"][20])
    a = default_assignment("bot1").with_(
        version=1,
        symbols=("BTCUSDT",),
        family=family,
        params={"fast": 2, "slow": 3} if family == "sma_cross" else {},
    )
    broker = CcxtBroker.connect(
        "binance", Credentials(KEY, SECRET), base_url=srv.url, sleep=lambda s: None
    )
    ledger = Ledger(tmp_path / "ledger.sqlite", durable=False)
    runner = BotRunner(
        "bot1",
        ledger=ledger,
        broker=broker,
        candles=FrameCandles({"BTCUSDT": bars}),
        clock=VenueClock(srv, start, start + steps * H),
        assignments=lambda: a,
        initial_cash=300.0,
        **kw,  # type: ignore[arg-type]
    )
    return runner, ledger


def test_round_trips_leave_dust_and_the_bot_enters_again(tmp_path: Path) -> None:
    bars = random_walk_bars(200, price=30_000.0, vol=0.01, seed=5)
    rules = {"BTCUSDT": MarketRules(step_size=0.00001, min_qty=0.00001, min_notional=5.0)}
    with running_fake_binance(
        {"BTCUSDT": bars}, balances={"USDT": 300.0}, rules=rules, api_key=KEY, secret=SECRET
    ) as srv:
        runner, ledger = _runner(srv, bars, tmp_path, 80)
        try:
            steps = runner.run()
            orders = ledger.orders()
            market = [o for o in srv.orders if o.type == "MARKET"]
            buys = [o for o in market if o.side == "BUY"]
            sells = [o for o in market if o.side == "SELL"]
            rejected = orders.filter(pl.col("status") == "rejected")
            dust = ledger.positions().get("BTCUSDT", 0.0)
            print(
                f"\n{steps} steps: {len(buys)} buys, {len(sells)} sells filled, "
                f"{rejected.height} rejected; dust left {dust:.2e} BTC "
                f"(the account: {srv.balances.get('BTC', 0.0) + srv.locked.get('BTC', 0.0):.2e})"
            )
            assert steps == 80
            assert len(buys) > 1 and len(sells) >= len(buys) - 1  # re-entries happen
            assert rejected.height == 0  # no unsellable sell, no InsufficientFunds
            assert not any(o.side == "SELL" and o.status != "FILLED" for o in market)
            # every sell after the first round trip sold the new position, not the dust only
            assert all(o.orig_qty >= 0.00001 for o in sells)
            assert "balance_divergence" not in ledger.risk_events()["kind"].to_list()
        finally:
            runner.close()


def test_a_ledger_holding_more_than_the_account_blocks_entries_until_acknowledged(
    tmp_path: Path,
) -> None:
    bars = random_walk_bars(200, price=30_000.0, vol=0.01, seed=5)
    with running_fake_binance(
        {"BTCUSDT": bars}, balances={"USDT": 300.0}, api_key=KEY, secret=SECRET
    ) as srv:
        runner, ledger = _runner(srv, bars, tmp_path, 6, "buy_and_hold", balance_check_every=1)
        try:
            runner.run()
            buys_before = [o for o in srv.orders if o.side == "BUY"]
            assert buys_before
            # someone moves coins out of the account behind the bot's back
            held = srv.balances.get("BTC", 0.0) + srv.locked.get("BTC", 0.0)
            srv.balances["BTC"], srv.locked["BTC"] = 0.0, 0.0
            for o in srv.orders:
                if o.status == "NEW":
                    o.status = "CANCELED"
            srv.balances["USDT"] = srv.balances.get("USDT", 0.0) + 5.0
            runner.clock = VenueClock(srv, runner.clock.now_ms(), runner.clock.now_ms() + 4 * H)
            runner.run()
            kinds = ledger.risk_events()["kind"].to_list()
            assert held > 0.001 and kinds.count("balance_divergence") == 1
            assert len([o for o in srv.orders if o.side == "BUY"]) == len(buys_before)  # blocked
            (tmp_path / ACK_FILE).write_text("checked by an operator\n")
            runner.clock = VenueClock(srv, runner.clock.now_ms(), runner.clock.now_ms() + 4 * H)
            runner.run()
            assert not (tmp_path / ACK_FILE).exists()
            kinds = ledger.risk_events()["kind"].to_list()
            assert kinds.count("balances_acknowledged") == 1
            assert ledger.positions().get("BTCUSDT", 0.0) == 0.0  # the account's quantity
            assert ledger.get_state_json("diverged") is None  # entries are free again
            assert kinds.count("balance_divergence") == 1  # and the ledger agrees now
        finally:
            runner.close()
