"""Tiny backtests whose every number is worked out by hand in the test (always run)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel, RiskRules
from trading_pipeline.backtest.engine import buy_and_hold, run_signals
from trading_pipeline.strategies.base import Signals


def frame(
    close: list[float],
    open_: list[float] | None = None,
    high: list[float] | None = None,
    low: list[float] | None = None,
) -> pl.DataFrame:
    o = open_ or close
    return pl.DataFrame(
        {
            "open": o,
            "high": high or [max(a, b) for a, b in zip(o, close, strict=True)],
            "low": low or [min(a, b) for a, b in zip(o, close, strict=True)],
            "close": close,
        }
    )


def sig(n: int, entries: list[int], exits: list[int]) -> Signals:
    e = np.zeros(n, bool)
    x = np.zeros(n, bool)
    e[entries] = True
    x[exits] = True
    return Signals.from_arrays(e, x)


CLOSE_FEE = CostModel(fee=0.001, slippage_bps=0.0, fill="close")


def test_one_trade_at_close_five_bars() -> None:
    bars = frame([10.0, 11.0, 12.0, 10.0, 13.0])
    m, eq, trades = run_signals(bars, sig(5, [1], [4]), costs=CLOSE_FEE, interval="1h", detail=True)
    # bar 1: spend all 1000 incl. fee → units = 1000 / 1.001 / 11 = 90.81827263645446
    units = 90.81827263645446
    assert trades is not None and trades["units"][0] == pytest.approx(units, rel=1e-15)
    # equity at each close: cash 0 + units × close; bar 4 sells at 13 less 0.1 %
    expected = [1000.0, units * 11, units * 12, units * 10, units * 13 * 0.999]
    assert eq is not None
    np.testing.assert_allclose(eq, expected, rtol=1e-15)
    assert m["final_equity"] == pytest.approx(1179.45690673, rel=1e-9)  # 1000/1.001/11*13*0.999
    assert m["trades"] == 1 and m["win_rate"] == 1.0
    assert m["fees_paid"] == pytest.approx((1000 - 1000 / 1.001) + units * 13 * 0.001)
    assert m["exposure"] == pytest.approx(3 / 5)  # in the market at the closes of bars 1..3
    # worst fall: from the bar-2 peak (units×12) to units×10
    assert m["max_drawdown"] == pytest.approx(1 - 10 / 12)
    assert m["max_drawdown_bars"] == 1


def test_next_open_fill_with_slippage() -> None:
    bars = frame(close=[10.0, 11.0, 12.0, 10.0, 13.0], open_=[10.0, 10.5, 11.5, 11.0, 12.0])
    costs = CostModel(fee=0.001, slippage_bps=10.0, fill="open")
    m, eq, trades = run_signals(bars, sig(5, [1], [3]), costs=costs, interval="1h", detail=True)
    # signal at bar 1 → buy at bar 2's open 11.5 × 1.001; exit signal bar 3 → sell at bar 4 open
    units = 1000 / 1.001 / (11.5 * 1.001)
    final = units * 12.0 * 0.999 * 0.999  # sell price 12 × (1 - 10 bps), then the 0.1 % fee
    assert trades is not None
    assert trades["entry_bar"][0] == 2 and trades["exit_bar"][0] == 4
    assert trades["entry_price"][0] == pytest.approx(11.5115)
    assert m["final_equity"] == pytest.approx(final, rel=1e-12)
    assert eq is not None and eq[1] == 1000.0 and eq[2] == pytest.approx(units * 12.0)


def test_stop_loss_fills_at_level_or_gap_open() -> None:
    costs = CostModel(fee=0.0, slippage_bps=0.0, fill="close")
    risk = RiskRules(stop_loss=0.05)
    # entry at close 100 → stop 95; bar 2 trades down to 94 from an open of 99 → out at 95
    bars = frame(
        [100, 100, 97, 90],
        open_=[100, 100, 99, 96],
        low=[100, 100, 94, 89],
        high=[100, 100, 99, 96],
    )
    m, _, trades = run_signals(
        bars, sig(4, [1], []), costs=costs, risk=risk, interval="1h", detail=True
    )
    assert trades is not None and trades["exit_price"][0] == 95.0 and trades["exit_bar"][0] == 2
    assert m["final_equity"] == pytest.approx(950.0)
    # a gap below the stop fills at the open (90), not at the stop price
    bars = frame(
        [100, 100, 91, 90],
        open_=[100, 100, 90, 91],
        low=[100, 100, 89, 89],
        high=[100, 100, 92, 92],
    )
    m, _, _ = run_signals(bars, sig(4, [1], []), costs=costs, risk=risk, interval="1h")
    assert m["final_equity"] == pytest.approx(900.0)


def test_take_profit_trailing_stop_and_max_holding() -> None:
    costs = CostModel(fee=0.0, slippage_bps=0.0, fill="close")
    bars = frame(
        [100, 100, 104, 108, 103],
        open_=[100, 100, 101, 104, 108],
        high=[100, 100, 105, 110, 108],
        low=[100, 100, 100, 103, 102],
    )
    m, _, _ = run_signals(
        bars, sig(5, [1], []), costs=costs, risk=RiskRules(take_profit=0.05), interval="1h"
    )
    assert m["final_equity"] == pytest.approx(1050.0)  # TP 105 touched on bar 2
    # trailing 5 %: best high 105 after bar 2, 110 after bar 3 → level 104.5 hit on bar 4
    m, _, _ = run_signals(
        bars, sig(5, [1], []), costs=costs, risk=RiskRules(trailing_stop=0.05), interval="1h"
    )
    assert m["final_equity"] == pytest.approx(1045.0)
    # at most 2 bars held: bought at close of bar 1, sold at close of bar 3 (108)
    m, _, _ = run_signals(
        bars, sig(5, [1], []), costs=costs, risk=RiskRules(max_holding_bars=2), interval="1h"
    )
    assert m["final_equity"] == pytest.approx(1080.0)


def test_short_only_when_allowed() -> None:
    bars = frame([100.0, 100.0, 80.0, 80.0])
    s = Signals.from_positions(np.array([0, -1, -1, 0]))
    costs = CostModel(fee=0.0, slippage_bps=0.0, fill="close")
    m, _, _ = run_signals(bars, s, costs=costs, interval="1h")
    assert m["final_equity"] == 1000.0 and m["trades"] == 0  # spot: shorts ignored
    m, _, _ = run_signals(bars, s, costs=costs, risk=RiskRules(allow_short=True), interval="1h")
    assert m["final_equity"] == pytest.approx(1200.0)  # sold 10 units at 100, bought back at 80


def test_position_size_and_minimum_order() -> None:
    bars = frame([10.0, 10.0, 20.0])
    costs = CostModel(fee=0.0, slippage_bps=0.0, fill="close")
    m, _, _ = run_signals(
        bars, sig(3, [1], []), costs=costs, risk=RiskRules(size=0.5), interval="1h"
    )
    assert m["final_equity"] == pytest.approx(500 + 50 * 20)
    m, _, _ = run_signals(
        bars,
        sig(3, [1], []),
        cash=5.0,
        costs=costs,
        risk=RiskRules(min_order_value=10.0),
        interval="1h",
    )
    assert m["trades"] == 0 and m["final_equity"] == 5.0


def test_same_bar_entry_and_exit_is_ignored_like_vectorbt() -> None:
    bars = frame([10.0, 11.0, 12.0])
    m, _, _ = run_signals(bars, sig(3, [1], [1]), costs=CLOSE_FEE, interval="1h")
    assert m["trades"] == 0


def test_sub_range_uses_earlier_bars_only_for_signals() -> None:
    bars = frame([10.0, 11.0, 12.0, 10.0, 13.0])
    m, eq, _ = run_signals(
        bars, sig(5, [1], [4]), costs=CLOSE_FEE, interval="1h", start=2, stop=5, detail=True
    )
    # the entry on bar 1 is before the fold: the fold starts flat and stays flat
    assert m["trades"] == 0 and eq is not None and eq.tolist() == [1000.0] * 3
    m, _, _ = run_signals(bars, sig(5, [2], [4]), costs=CLOSE_FEE, interval="1h", start=2)
    assert m["final_equity"] == pytest.approx(1000 / 1.001 / 12 * 13 * 0.999)


def test_buy_and_hold_pays_one_fee_each_way_in() -> None:
    bars = frame([10.0, 20.0, 30.0])
    m = buy_and_hold(bars, costs=CLOSE_FEE, interval="1d")
    assert m["final_equity"] == pytest.approx(1000 / 1.001 * 3)
    # annualisation from the interval: 3 daily bars
    assert m["cagr"] == pytest.approx((3 / 1.001) ** (365 / 3) - 1)


def test_costs_default_on_and_zero_edge_loses() -> None:
    assert CostModel().fee == 0.001 and CostModel().slippage_bps > 0 and CostModel().fill == "open"
    # a flat market: trading in and out has no edge, so every round trip only pays costs
    n = 40
    bars = frame([100.0] * n)
    s = Signals.from_positions(np.arange(n) % 2)
    m, _, _ = run_signals(bars, s, interval="1h")
    rounds = m["trades"]
    assert rounds >= 19
    per_round = (1 / 1.001) / 1.0002 * 0.9998 * 0.999  # fee and 2 bps slippage, both sides
    assert m["final_equity"] == pytest.approx(1000 * per_round**rounds, rel=1e-9)
    assert m["final_equity"] < 1000 * 0.96
