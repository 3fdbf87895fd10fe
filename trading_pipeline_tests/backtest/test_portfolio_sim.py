"""The portfolio simulator against a plain-Python reference, and by hand on tiny data."""

from __future__ import annotations

import numpy as np
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.portfolio import BASKET, benchmarks, simulate, simulate_reference
from trading_pipeline.errors import UserInputError


def _prices(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n, m)), axis=0))
    open_ = np.vstack([np.full((1, m), 100.0), close[:-1]]) * np.exp(rng.normal(0, 0.003, (n, m)))
    return open_, close


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_parity_with_plain_python(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = 300, 3
    open_, close = _prices(n, m, seed)
    raw = rng.uniform(0.0, 1.0, (n, m)) * (rng.uniform(size=(n, m)) > 0.3)
    weights = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1.0)  # some bars sum < 1
    decide = rng.uniform(size=n) < 0.2
    costs = [CostModel(fee=0.001, slippage_bps=2.0), CostModel(fee=0.002), CostModel(fee=0.0)]
    min_order = 5.0
    run = simulate(
        open_,
        close,
        weights,
        decide,
        cash=1000.0,
        costs=costs,
        bars_per_year=8760.0,
        min_order_value=min_order,
    )
    forced = decide.copy()
    forced[0] = True
    equity, cash = simulate_reference(
        open_.tolist(),
        close.tolist(),
        weights.tolist(),
        forced.tolist(),
        1000.0,
        [c.fee for c in costs],
        [c.slippage for c in costs],
        min_order,
    )
    np.testing.assert_allclose(run.equity, equity, rtol=1e-9, atol=1e-9)
    assert run.metrics["orders"] > 20  # the comparison exercised rebalancing
    assert run.metrics["costs"] > 0
    assert min(cash) >= 0.0  # never borrowed
    assert np.all(run.invested <= 1.0 + 1e-12)


def test_one_coin_held_by_hand() -> None:
    """All in coin 0 at the second bar's open, then marked at each close: costs on the buy."""
    open_ = np.array([[10.0, 5.0], [11.0, 5.0], [12.0, 6.0], [13.0, 7.0]])
    close = np.array([[10.5, 5.0], [11.5, 5.5], [12.5, 6.5], [14.0, 7.5]])
    w = np.array([[1.0, 0.0]] * 4)
    fee, slip = 0.001, 0.0002
    run = simulate(
        open_,
        close,
        w,
        np.zeros(4, dtype=bool),
        cash=1000.0,
        costs=CostModel(fee=fee, slippage_bps=2.0),
        bars_per_year=8760.0,
    )
    units = 1000.0 / (1 + fee) / (11.0 * (1 + slip))
    expected = [1000.0, units * 11.5, units * 12.5, units * 14.0]
    np.testing.assert_allclose(run.equity, expected, rtol=1e-12)
    assert run.metrics["trades"] == 1 and run.metrics["orders"] == 1 and run.metrics["opened"] == 1
    assert run.metrics["total_return"] == pytest.approx(expected[-1] / 1000.0 - 1.0)


def test_sell_to_zero_and_rebalance_pays_costs() -> None:
    open_ = np.full((4, 2), 10.0)
    close = np.full((4, 2), 10.0)
    w = np.array([[0.5, 0.5], [0.5, 0.5], [0.0, 1.0], [0.0, 1.0]])
    decide = np.array([False, False, True, False])
    costs = CostModel(fee=0.01, slippage_bps=0.0)
    run = simulate(open_, close, w, decide, cash=1000.0, costs=costs, bars_per_year=8760.0)
    # bar 1: 2 × 500 wanted (505 each with the fee) > 1000 cash: both scaled to spend 1000
    bought = 1000.0 / 1.01
    assert run.equity[1] == pytest.approx(bought)
    # bar 3: coin 0 sold whole (1 % fee), the proceeds bought into coin 1 (1 % fee)
    assert run.metrics["orders"] == 4
    assert run.equity[3] < run.equity[2]
    assert run.metrics["costs"] == pytest.approx(1000.0 - run.equity[3], rel=1e-9)


def test_benchmarks_basket_not_rebalanced() -> None:
    open_, close = _prices(200, 3, 9)
    out = benchmarks(open_, close, ["A", "B", "C"], bars_per_year=8760.0)
    assert set(out) == {"A", "B", "C", BASKET}
    basket = out[BASKET]
    assert basket.metrics["orders"] == 3  # one buy per coin, never rebalanced
    # unrebalanced basket = the average of the single-coin holds (same costs, same fill bar)
    mean_single = np.mean([out[c].equity for c in "ABC"], axis=0)
    np.testing.assert_allclose(basket.equity, mean_single, rtol=1e-9)


def test_bad_shapes_refused() -> None:
    with pytest.raises(UserInputError):
        simulate(np.ones((3, 2)), np.ones((3, 3)), np.ones((3, 2)), [True] * 3, bars_per_year=1.0)


def test_trades_count_rebalances_that_filled() -> None:
    """A decision whose orders are all below the minimum order value is no trade."""
    open_ = np.full((5, 2), 10.0)
    close = np.full((5, 2), 10.0)
    w = np.array([[0.5, 0.5], [0.5, 0.5], [0.501, 0.499], [0.2, 0.8], [0.2, 0.8]])
    decide = np.array([False, True, True, False, False])
    run = simulate(
        open_, close, w, decide, cash=1000.0, costs=CostModel(fee=0.0, slippage_bps=0.0),
        bars_per_year=8760.0, min_order_value=5.0,
    )  # fmt: skip
    # bar 1: the forced first decision fills (2 orders); bar 2: 0.5 → 0.5, nothing to do;
    # bar 3: 0.5/0.5 → 0.501/0.499 is a 1-unit order < 5: skipped
    assert run.entries.tolist() == [False, True, False, False, False]
    assert run.metrics["trades"] == 1 and run.metrics["opened"] == 1 and run.metrics["orders"] == 2
