"""The ledger books each step atomically and never books an order or a fill twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from trading_pipeline.bots.broker import OrderRequest, OrderResult
from trading_pipeline.bots.ledger import Ledger, StepRecord, split_symbol

BUY = OrderRequest("bot1-1-BTCUSDT-0-buy", "BTCUSDT", "buy", 0.01, reason="entry")
SELL = OrderRequest("bot1-1-BTCUSDT-3600000-sell", "BTCUSDT", "sell", 0.01, reason="exit")


def _filled(req: OrderRequest, price: float, fee: float, ccy: str = "USDT") -> OrderResult:
    return OrderResult(req.client_order_id, "filled", req.qty, price, fee, ccy, "x1", "")


def test_a_round_trip_books_cash_positions_equity(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as led:
        led.open_account("bot1", 300.0)
        led.open_account("bot1", 999.0)  # a second start changes nothing
        assert led.cash() == 300.0 and led.initial_cash() == 300.0
        led.record_intents([BUY], version=1, bar_ms=0, sent_ms=3_600_000)
        assert [o["status"] for o in led.pending_orders()] == ["submitting"]
        led.record_step(
            StepRecord(
                3_600_000,
                1,
                "fp",
                [(BUY, _filled(BUY, 20_000.0, 0.2))],
                3_600_000,
                3_600_000,
                (300.0, 300.0, 0.0),
            )
        )
        assert led.pending_orders() == []
        assert led.positions() == {"BTCUSDT": pytest.approx(0.01)}
        assert led.cash() == pytest.approx(300.0 - 200.0 - 0.2)
        assert led.position_cost("BTCUSDT") == pytest.approx(200.2)
        led.record_intents([SELL], version=1, bar_ms=3_600_000, sent_ms=7_200_000)
        led.record_step(
            StepRecord(
                7_200_000,
                1,
                "fp",
                [(SELL, _filled(SELL, 21_000.0, 0.21))],
                7_200_000,
                7_200_000,
                (309.8, 99.8, 210.0),
            )
        )
        assert led.positions() == {}
        assert led.cash() == pytest.approx(99.8 + 210.0 - 0.21)
        eq = led.equity()
        assert eq.columns == ["time", "equity", "cash", "exposure"] and eq.height == 2
        assert eq["equity"].to_list() == [300.0, 309.8]
        assert led.fills()["client_order_id"].to_list() == [
            BUY.client_order_id,
            SELL.client_order_id,
        ]
        assert led.last_step_ms() == 7_200_000


def test_the_same_result_twice_books_one_fill_and_intents_are_unique(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as led:
        led.open_account("bot1", 300.0)
        led.record_intents([BUY, BUY], version=1, bar_ms=0, sent_ms=1)
        led.record_intents([BUY], version=1, bar_ms=0, sent_ms=1)
        assert led.orders().height == 1
        res = _filled(BUY, 20_000.0, 0.2)
        led.apply_results([(BUY, res)], fill_ms=1)
        led.apply_results([(BUY, res)], fill_ms=1)
        assert led.fills().height == 1
        assert led.cash() == pytest.approx(99.8)
        with pytest.raises(sqlite3.IntegrityError):  # the database itself refuses a second fill
            led._db.execute(
                "INSERT INTO fills (client_order_id, time_ms, symbol, side, qty, price, fee,"
                " fee_currency, cash_delta, base_delta) VALUES (?,1,'BTCUSDT','buy',1,1,0,'USDT',0,0)",
                (BUY.client_order_id,),
            )


def test_a_failing_step_leaves_nothing_behind(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as led:
        led.open_account("bot1", 300.0)
        # a result for an order that was never written as an intent violates the foreign key
        with pytest.raises(sqlite3.IntegrityError):
            led.record_step(
                StepRecord(
                    3_600_000,
                    1,
                    "fp",
                    [(BUY, _filled(BUY, 20_000.0, 0.2))],
                    3_600_000,
                    3_600_000,
                    (300.0, 300.0, 0.0),
                    risk_events=[("daily_loss", {"loss": 0.2})],
                    state={"peak": 300.0},
                )
            )
        assert led.equity().height == 0 and led.risk_events().height == 0
        assert led.last_step_ms() is None and led.get_state("peak") is None and led.cash() == 300.0


def test_base_fees_reduce_the_position_and_holdings_before_take_fills_back_out(
    tmp_path: Path,
) -> None:
    with Ledger(tmp_path / "l.sqlite") as led:
        led.open_account("bot1", 300.0)
        led.record_intents([BUY], version=1, bar_ms=0, sent_ms=100)
        led.apply_results([(BUY, _filled(BUY, 20_000.0, 0.00001, "BTC"))], fill_ms=100)
        assert led.positions()["BTCUSDT"] == pytest.approx(0.01 - 0.00001)
        assert led.cash() == pytest.approx(100.0)
        cash, pos = led.holdings_before(100)
        assert cash == pytest.approx(300.0) and pos == {}
        cash, pos = led.holdings_before(101)
        assert cash == pytest.approx(100.0) and pos["BTCUSDT"] == pytest.approx(0.00999)


def test_split_symbol() -> None:
    assert split_symbol("BTCUSDT") == ("BTC", "USDT")
    assert split_symbol("ETHBTC") == ("ETH", "BTC")
    assert split_symbol("DOGEFDUSD") == ("DOGE", "FDUSD")
