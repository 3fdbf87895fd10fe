"""The multi-series backtest: the two-venue inventory model and the hedged spot position."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.multi import ArbSettings, backtest_multi
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.align import align_venues
from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.strategies.arbitrage import Arbitrage, cost_bps
from trading_pipeline_tests.fakes.bars import make_bars

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def flat(prices: list[float]) -> pl.DataFrame:
    """Bars whose open = high = low = close = the given price, hourly from T0."""
    n = len(prices)
    return pl.DataFrame(
        {
            "open_time": pl.datetime_range(
                T0, T0 + timedelta(hours=n - 1), "1h", eager=True, time_zone="UTC"
            ),
            **{c: prices for c in ("open", "high", "low", "close")},
            "volume": [1.0] * n,
        }
    )


# venue b is 1 % dearer for three bars, then both trade at 100
A = flat([100.0] * 8)
B = flat([101.0] * 3 + [100.0] * 5)
PARAMS = {
    "threshold_bps": 0.0,
    "fee_a_bps": 10.0,
    "fee_b_bps": 20.0,
    "slippage_bps": 1.0,
    "rebalance_bps": 5.0,
    "max_use": 0.5,
    "rebalance_bars": 0,
}
COSTS = {"a": CostModel(fee=0.001, slippage_bps=1.0), "b": CostModel(fee=0.002, slippage_bps=1.0)}
ARB = ArbSettings(withdraw_fee_base=0.001, transfer_bars=1, min_order_value=1.0)


def test_hand_computed_inventory_fills() -> None:
    r = backtest_multi(
        {"a": A, "b": B},
        "arbitrage",
        PARAMS,
        cash=1000,
        costs=COSTS,
        interval="1h",
        detail=True,
        arb=ARB,
    )
    m, fills = r.metrics, r.ledger
    assert fills is not None
    # signals at the closes of bars 0..2 (b dear by 100 bps > 37 bps of costs): fills at 1..3
    assert fills["bar"].to_list() == [1, 2, 3] and m["trades"] == 3
    assert fills["buy_venue"].to_list() == ["a", "a", "a"]
    # first pair: half of the limiting balance, b's base (250 / 101), bought at 100 + 1 bp
    u1 = 0.5 * min(250 / 101, 250 / (100 * 1.0001 * 1.001))
    assert fills["units"][0] == pytest.approx(u1)
    assert fills["buy_price"][0] == pytest.approx(100 * 1.0001)
    assert fills["sell_price"][0] == pytest.approx(101 * 0.9999)
    # the third pair fills at the next open, where the spread has gone: it only pays costs
    assert fills["spread_bps"].to_list() == pytest.approx([100.0, 100.0, 0.0])
    units = fills["units"].to_numpy()
    assert m["gross_spread_pnl"] == pytest.approx(float(units[:2].sum() * 1.0))
    buy, sell = fills["buy_price"].to_numpy(), fills["sell_price"].to_numpy()
    fees = float(np.sum(units * (buy * 0.001 + sell * 0.002)))
    assert m["fees_paid"] == pytest.approx(fees)
    assert m["slippage_cost"] == pytest.approx(float(units[:2].sum() * 201e-4 + units[2] * 2e-2))
    # both venues end at 100 and total base never changes, so the excess over holding the
    # starting inventory is exactly the spread captured minus every cost
    assert m["net_arb_pnl"] == pytest.approx(m["net_spread_pnl"], abs=1e-9)
    assert m["total_return"] == pytest.approx(m["net_arb_pnl"] / 1000)
    assert r.benchmark["total_return"] == pytest.approx(100 / (100 * 1.0001 * 1.001) - 1)
    # the curve the walk-forward deflates is the one scored: arbitrage P&L, not inventory moves
    assert r.scored_equity is not None and r.equity is not None and r.hold_equity is not None
    assert r.scored_equity[-1] == pytest.approx(1000 + r.equity[-1] - r.hold_equity[-1])
    assert r.scored_equity[-1] / 1000 - 1 == pytest.approx(m["total_return"])


def test_rebalancing_costs_and_delays() -> None:
    params = {**PARAMS, "rebalance_bars": 24}
    rb = ArbSettings(withdraw_fee_base=0.001, transfer_bars=2, min_order_value=1.0)
    a, b = flat([100.0] * 30), flat([101.0] * 3 + [100.0] * 27)
    r = backtest_multi(
        {"a": a, "b": b},
        "arbitrage",
        params,
        cash=1000,
        costs=COSTS,
        interval="1h",
        detail=True,
        arb=rb,
    )
    m = r.metrics
    assert m["rebalances"] == 1
    # rebalance at bar 24: base moved a -> b minus the withdrawal fee; quote b -> a minus 5 bps
    fills = r.ledger
    assert fills is not None
    units = float(fills["units"].sum())
    quote_gap = float(
        (
            (fills["sell_price"] * (1 - 0.002) + fills["buy_price"] * (1 + 0.001)) * fills["units"]
        ).sum()
    )
    assert m["rebalance_cost"] == pytest.approx(0.001 * 100 + quote_gap / 2 * 5e-4)
    assert units > 0
    assert m["net_arb_pnl"] == pytest.approx(m["net_spread_pnl"], abs=1e-9)
    # the equity never jumps at the transfer: money in transit still counts
    eq = r.equity
    assert eq is not None and abs(eq[25] - eq[23]) < 1.0


def test_price_moves_of_the_inventory_are_not_arbitrage_profit() -> None:
    up = flat([100.0 + k for k in range(50)])
    r = backtest_multi({"a": up, "b": up}, "arbitrage", {}, cash=1000, interval="1h", detail=True)
    assert r.metrics["trades"] == 0
    assert r.metrics["total_return"] == 0.0 and r.metrics["sharpe"] == 0.0
    assert r.metrics["inventory_return"] == pytest.approx(0.5 * (149 / 100 - 1))
    assert r.hold_equity is not None and r.equity is not None
    np.testing.assert_allclose(r.equity, r.hold_equity)


def test_no_instant_transfers_inventory_runs_out() -> None:
    a, b = flat([100.0] * 20), flat([103.0] * 20)
    params = {**PARAMS, "max_use": 1.0}
    r = backtest_multi({"a": a, "b": b}, "arbitrage", params, costs=COSTS, interval="1h")
    assert r.metrics["trades"] == 1  # b's base is gone after the first pair
    assert r.metrics["skipped_no_inventory"] == 18


def test_range_sees_no_bar_after_stop() -> None:
    rng = np.random.default_rng(3)
    a = make_bars(400, seed=3)
    m = pl.Series(1 + rng.normal(0, 40, 400) / 1e4)
    b = a.with_columns(*(pl.col(c) * m for c in ("open", "high", "low", "close")))
    changed = b.with_columns(
        pl.when(pl.int_range(pl.len()) >= 300).then(pl.col(c) * 1.2).otherwise(pl.col(c))
        for c in ("open", "high", "low", "close")
    )
    params = {**PARAMS, "threshold_bps": 0.0, "fee_b_bps": 10.0}
    r1 = backtest_multi({"a": a, "b": b}, "arbitrage", params, interval="1h", start=50, stop=300)
    r2 = backtest_multi(
        {"a": a, "b": changed}, "arbitrage", params, interval="1h", start=50, stop=300
    )
    assert r1.metrics["trades"] > 10
    assert r1.metrics == r2.metrics
    with pytest.raises(UserInputError, match="empty or outside"):
        backtest_multi({"a": a, "b": b}, "arbitrage", params, interval="1h", start=10, stop=5)


def test_unknown_family_is_refused() -> None:
    with pytest.raises(UserInputError, match="does not know"):
        backtest_multi({"a": A}, "sma_cross", {}, interval="1h")


def crash(n: int = 900) -> pl.DataFrame:
    path = np.concatenate([np.full(300, 100.0), np.linspace(100, 60, 50), np.full(n - 350, 60.0)])
    wiggle = 1 + 0.001 * np.sin(np.arange(n))
    return flat((path * wiggle).tolist())


HEDGE = {"use_bear": False, "use_highvol": False, "dd_limit": 0.1, "dd_bars": 240}


def test_hedging_to_stable_coin_stops_the_losses() -> None:
    bars = crash()
    r = backtest_multi({"spot": bars}, "hedging", HEDGE, cash=1000, interval="1h", detail=True)
    eq = r.equity
    assert eq is not None
    assert r.metrics["trades"] >= 2
    assert r.metrics["max_drawdown"] < 0.15  # out after ~10 %, not the 40 % crash
    assert r.benchmark["max_drawdown"] > 0.39
    assert r.metrics["total_return"] > r.benchmark["total_return"]
    assert r.metrics["fees_paid"] > 0


def test_pair_hedge_on_futures_neutralises_the_crash() -> None:
    bars = crash()
    zero = CostModel(fee=0.0, slippage_bps=0.0)
    params = {**HEDGE, "hedge_ratio": 1.0}
    r = backtest_multi(
        {"spot": bars, "um-BTCUSDT": bars},
        "hedging",
        params,
        cash=1000,
        costs=zero,
        interval="1h",
        detail=True,
    )
    assert r.metrics["hedged_share"] > 0 and r.metrics["exposure"] == 1.0
    eq = r.equity
    assert eq is not None
    # from the bar after the short is placed until the crash ends, spot and short cancel
    hedged = np.flatnonzero(np.diff(eq[320:350]) != 0)
    assert hedged.size < 30
    assert eq[349] == pytest.approx(eq[340], rel=1e-9)
    assert r.metrics["max_drawdown"] < 0.15


BINANCE = "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"
COINBASE = "saijayanth888-trading-bot/freqtrade_coinbase_spot_1h/BTC_USD-1h.feather"


def test_real_overlap_with_default_costs_stays_in_cash(real_data: Path) -> None:
    """Binance 0.1 % + Coinbase taker 0.6 %: no hour of the real overlap pays, so no trade."""
    a = read_candle_file(real_data / BINANCE)
    b = read_candle_file(real_data / COINBASE)
    series = {"binance": a, "coinbase": b}
    costs = {"binance": CostModel(0.001, 2.0), "coinbase": CostModel(0.006, 2.0)}
    fam = Arbitrage()
    params = fam.default_params()
    r = backtest_multi(series, fam, params, cash=10_000, costs=costs, interval="1h")
    aligned = align_venues(a, b, interval="1h")
    spread = np.abs((aligned["b_close"] / aligned["a_close"] - 1).to_numpy()) * 1e4
    would_trade = int(np.sum(spread - cost_bps(params) > float(params["threshold_bps"])))
    assert r.bars == aligned.height > 17_000
    assert r.metrics["signal_bars"] == would_trade == 0
    assert r.metrics["trades"] == 0 and r.metrics["total_return"] == 0.0
    assert r.metrics["inventory_return"] != 0.0  # the inventory moved; that is not counted
