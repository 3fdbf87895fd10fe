"""Every family's compiled form equals its Python ``signals()`` + the simulator: the fused grid
(metrics, bit for bit) and the fused single backtest (equity to 1e-9, the same trades), on a
seeded random sample of combinations, with the family's filters, stops and take-profit and the
risk rules' trailing stop and maximum holding."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel, RiskRules
from trading_pipeline.backtest.engine import run_compiled, run_grid, run_signals
from trading_pipeline.backtest.synthetic import random_walk_bars
from trading_pipeline.strategies.base import StrategyFamily
from trading_pipeline.strategies.registry import FAMILIES

PER_FAMILY = 8
START = 250
SETTINGS = {
    "close-fill": (CostModel(fee=0.001, slippage_bps=0.0, fill="close"), RiskRules()),
    "open-fill-risk": (
        CostModel(fee=0.002, slippage_bps=5.0, fill="open"),
        RiskRules(trailing_stop=0.04, max_holding_bars=60, min_order_value=0.0),
    ),
}


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return random_walk_bars(2500, seed=31)


def sample(fam: StrategyFamily, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` valid random parameter sets over the whole space (filters on and off)."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    while len(out) < n:
        raw: dict[str, Any] = {}
        for p in fam.space.params:
            vals = p.values()
            if p.off is not None and rng.random() < 0.5:
                raw[p.name] = p.off
            elif p.tune or p.off is not None or rng.random() < 0.5:
                raw[p.name] = vals[int(rng.integers(len(vals)))]
        try:
            out.append(fam.validate(raw))
        except ValueError:  # a broken constraint (UserInputError): draw again
            continue
    return out


def same(a: float, b: float) -> bool:
    return a == b or (np.isnan(a) and np.isnan(b))


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_fused_equals_signals_and_simulator(bars: pl.DataFrame, name: str, setting: str) -> None:
    fam = FAMILIES[name]
    costs, risk = SETTINGS[setting]
    combos = sample(fam, PER_FAMILY, seed=len(name) * 7 + len(setting))
    grid = run_grid(bars, fam, combos, costs=costs, risk=risk, interval="1h", start=START)
    assert grid.fused
    trades = 0
    for k, params in enumerate(combos):
        form = fam.compiled(params)
        assert form is not None
        ref, ref_eq, ref_tr = run_signals(
            bars,
            fam.signals(bars, params),
            costs=costs,
            risk=risk,
            interval="1h",
            start=START,
            detail=True,
        )
        for metric, value in ref.items():
            assert same(grid.metrics[metric][k], value), (params, metric)
        got, eq, tr = run_compiled(
            bars, form, costs=costs, risk=risk, interval="1h", start=START, detail=True
        )
        assert got == pytest.approx(ref, rel=1e-12, nan_ok=True)
        assert eq is not None and ref_eq is not None and tr is not None and ref_tr is not None
        np.testing.assert_allclose(eq, ref_eq, rtol=1e-9, atol=0)
        assert tr.equals(ref_tr)
        trades += ref_tr.height
    if name != "buy_and_hold":
        assert trades > 0, "the sample exercises trades"
