"""Live runners on the fake Binance server: the daily-loss stop kept at the exchange (a STOP_LOSS
order sized to the position, placed once per day's level, sold by the venue inside the crash
bar), and wrong keys halting the bot before any order."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.bots.assignment import Assignment, RiskLimits
from trading_pipeline.bots.broker import CredentialsRefused
from trading_pipeline.bots.candles import FrameCandles
from trading_pipeline.bots.ccxt_broker import CcxtBroker, Credentials
from trading_pipeline.bots.clock import ReplayClock, to_ms
from trading_pipeline.bots.ledger import Ledger
from trading_pipeline.bots.runner import BotRunner
from trading_pipeline_tests.fakes.binance import FakeBinance, running_fake_binance

from .test_daily_stop import START, crash_bars

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("permissive_fleet")]  # bot1 on buy_and_hold

KEY, SECRET = "stop-key-0123456789", "stop-secret-9876543210"


class VenueClock(ReplayClock):
    """Replay time that the fake venue follows: at ``now`` (a bar close) the venue is at the
    bar's last millisecond, so its price is that bar's close (= the next bar's open, the price
    the runner sizes with) and the bar counts as closed."""

    def __init__(self, srv: FakeBinance, start_ms: int, end_ms: int) -> None:
        super().__init__(start_ms, end_ms)
        self.srv = srv
        srv.set_now(start_ms - 1)

    def sleep_until(self, ms: int) -> bool:
        ok = super().sleep_until(ms)
        self.srv.set_now(self.now_ms() - 1)
        return ok


def test_the_live_runner_holds_its_daily_limit_with_an_exchange_stop(tmp_path: Path) -> None:
    bars = crash_bars("one_bar")
    end = START + timedelta(days=4)
    with running_fake_binance(
        {"BTCUSDT": bars}, balances={"USDT": 300.0}, api_key=KEY, secret=SECRET
    ) as srv:
        broker = CcxtBroker.connect(
            "binance", Credentials(KEY, SECRET), base_url=srv.url, sleep=lambda s: None
        )
        clock = VenueClock(srv, to_ms(START), to_ms(end))
        a = Assignment(
            "bot1", 1, ("BTCUSDT",), "1h", "buy_and_hold", 1, {}, 0.3, RiskLimits(max_drawdown=1.0)
        )
        ledger = Ledger(tmp_path / "ledger.sqlite", durable=False)
        runner = BotRunner(
            "bot1",
            ledger=ledger,
            broker=broker,
            candles=FrameCandles({"BTCUSDT": bars}, end_ms=to_ms(end)),
            clock=clock,
            assignments=lambda: a,
            initial_cash=300.0,
        )
        try:
            runner.run()
            stops = [o for o in srv.orders if o.type == "STOP_LOSS"]
            # one level per day and position, not one order per step
            assert 1 <= len(stops) <= 6
            filled = [o for o in stops if o.status == "FILLED"]
            assert len(filled) == 1 and filled[0].fill_price == pytest.approx(filled[0].stop_price)
            assert all(o.status in ("FILLED", "CANCELED") for o in stops[:-1])
            # sized to the position the exchange holds (the fee was taken in the coin)
            buy = next(o for o in srv.orders if o.side == "BUY")
            assert filled[0].orig_qty == pytest.approx(buy.orig_qty - buy.commission, abs=1e-5)
            fills = ledger.fills()
            sold = fills.filter(pl.col("side") == "sell")
            assert sold.height == 1 and sold["client_order_id"][0] == filled[0].client_order_id
            assert int(sold["time_ms"][0]) == filled[0].update_ms  # inside the crash bar
            eq = ledger.equity().with_columns(ms=pl.col("time").dt.epoch("ms"))
            day_start = float(
                eq.filter(pl.col("ms") == to_ms(START + timedelta(days=2)))["equity"][0]
            )
            day_end = float(
                eq.filter(pl.col("ms") == to_ms(START + timedelta(days=3)))["equity"][0]
            )
            loss = 1.0 - day_end / day_start
            print(f"\nlive (fake Binance) -30% one-bar crash: the day realised {loss:.2%}")
            assert 0.095 < loss <= 0.1005
            assert ledger.risk_events()["kind"].to_list()[0] == "daily_loss"
            account = srv.balances.get("BTC", 0.0) + srv.locked.get("BTC", 0.0)
            assert account == pytest.approx(ledger.positions().get("BTCUSDT", 0.0), abs=1e-5)
        finally:
            runner.close()


def test_wrong_keys_halt_the_bot_with_one_line_and_no_order(tmp_path: Path) -> None:
    """The venue answers -2015 (other keys configured): the runner stops at the first refusal,
    even with keep_going, and the exchange never receives an order."""
    bars = crash_bars("one_bar")
    end = START + timedelta(days=2)
    with running_fake_binance(
        {"BTCUSDT": bars}, balances={"USDT": 300.0}, api_key=KEY, secret=SECRET
    ) as srv:
        broker = CcxtBroker.connect(
            "binance",
            Credentials("someone-elses-key-000", "someone-elses-secret-000"),
            base_url=srv.url,
            sleep=lambda s: None,
        )
        a = Assignment("bot1", 1, ("BTCUSDT",), "1h", "buy_and_hold", 1, {}, 0.3, RiskLimits())
        ledger = Ledger(tmp_path / "ledger.sqlite", durable=False)
        runner = BotRunner(
            "bot1",
            ledger=ledger,
            broker=broker,
            candles=FrameCandles({"BTCUSDT": bars}, end_ms=to_ms(end)),
            clock=VenueClock(srv, to_ms(START), to_ms(end)),
            assignments=lambda: a,
            initial_cash=300.0,
        )
        with pytest.raises(CredentialsRefused) as info:
            runner.run(keep_going=True)
        message = str(info.value)
        assert "\n" not in message and message.startswith("bot1: binance refused the API key")
        assert "-2015" in message or "Invalid API-key" in message
        assert "halted" in message and "someone-elses" not in message
        assert srv.requests_to("/api/v3/order", "POST") == []
        assert srv.orders == []
        orders = ledger.orders()  # refused at the first signed call: an intent is never sent
        assert set(orders["status"].to_list()) <= {"not_sent"}
        assert ledger.last_step_ms() is None  # no step was booked after the refusal
        runner.close()
