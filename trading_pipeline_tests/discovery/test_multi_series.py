"""Walk-forward over the multi-series families: test windows only, deflated, cash when nothing pays."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.synthetic import random_walk_bars
from trading_pipeline.discovery.multi_series import walk_forward_multi
from trading_pipeline.strategies.arbitrage import Arbitrage


def test_walk_forward_reports_test_windows_only() -> None:
    a = random_walk_bars(1200, seed=5)
    rng = np.random.default_rng(6)
    m = pl.Series(1 + rng.normal(0, 40, 1200) / 1e4)
    b = a.with_columns(*(pl.col(c) * m for c in ("open", "high", "low", "close")))
    fam = Arbitrage()
    grid = fam.grid(threshold_bps=[0.0, 20.0, 80.0], fee_a_bps=5.0, fee_b_bps=5.0)
    costs = CostModel(fee=0.0005, slippage_bps=1.0)
    seen: list[int] = []
    wf = walk_forward_multi(
        {"a": a, "b": b},
        fam,
        grid,
        folds=3,
        interval="1h",
        costs=costs,
        on_fold=lambda row: seen.append(row["fold"]),
    )
    assert seen == [0, 1, 2] and len(wf.folds) == 3
    for row in wf.folds:
        assert row["params"] in grid
        assert row["test"]["trades"] >= 0 and "total_return" in row["benchmark"]
    growth = math.prod(1 + row["return"] for row in wf.folds)
    assert wf.oos["total_return"] == pytest.approx(growth - 1)
    for row in wf.folds:
        assert row["return"] == (0.0 if row["cash"] else row["test"]["total_return"])
    # judged like a tuned family: the out-of-sample Sharpe deflated for every combination tried
    assert wf.oos["n_trials"] == len(grid) * 3
    assert 0.0 <= wf.oos["dsr_probability"] <= 1.0 and wf.oos["dsr_benchmark_per_bar"] > 0


def test_walk_forward_stays_in_cash_when_nothing_pays() -> None:
    """Costs above every spread: no fold trades, the result is cash, not a loss."""
    a = random_walk_bars(900, seed=5)
    m = pl.Series(1 + np.random.default_rng(6).normal(0, 40, 900) / 1e4)
    b = a.with_columns(*(pl.col(c) * m for c in ("open", "high", "low", "close")))
    fam = Arbitrage()
    grid = fam.grid(threshold_bps=[0.0, 10.0], fee_a_bps=0.0, fee_b_bps=0.0)
    costs = CostModel(fee=0.01, slippage_bps=5.0)  # 1 % per side really charged
    wf = walk_forward_multi({"a": a, "b": b}, fam, grid, folds=2, interval="1h", costs=costs)
    assert all(row["cash"] for row in wf.folds)
    assert all(row["test"]["trades"] > 0 for row in wf.folds)  # it would have traded, and lost
    assert wf.oos["total_return"] == 0.0
    # all cash: a Sharpe ratio of zero, which cannot beat the luck of 4 trials
    assert wf.oos["sharpe_per_bar"] == 0.0 and wf.oos["dsr_probability"] < 0.5
