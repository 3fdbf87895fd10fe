"""Parity with vectorbt's ``Portfolio.from_signals`` on real BTCUSDT hourly history, and of the
fused grid kernel with the one-combination path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.engine import backtest, run_grid, run_signals
from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.strategies.base import Params
from trading_pipeline.strategies.registry import get_family
from trading_pipeline.strategies.sma_cross import SmaCross
from trading_pipeline_tests.fakes.bars import make_bars

pytestmark = pytest.mark.slow  # real BTC through vectorbt (imports and compiles for ~1 min)

BTC_1H = "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"


@pytest.fixture(scope="module")
def btc(real_data: Path) -> pl.DataFrame:
    path = real_data / BTC_1H
    if not path.exists():
        pytest.skip(f"absent: {path}")
    return read_candle_file(path).tail(3 * 8760)  # three years of hourly bars


@pytest.mark.parametrize("fee", [0.001, 0.0025])
def test_sma_cross_equals_vectorbt_on_real_btc(btc: pl.DataFrame, fee: float) -> None:
    vbt = pytest.importorskip("vectorbt")
    pd = pytest.importorskip("pandas")
    fam = get_family("sma_cross")
    grid = fam.grid(fast=range(5, 50, 8), slow=range(20, 200, 30))
    costs = CostModel(fee=fee, slippage_bps=0.0, fill="close")
    res = run_grid(btc, fam, grid, cash=1000.0, costs=costs, interval="1h")
    assert res.fused and len(res) == len(grid) >= 30

    close = pd.Series(btc["close"].to_numpy())
    sigs = [fam.signals(btc, p) for p in grid]
    entries = pd.DataFrame({k: s.entries for k, s in enumerate(sigs)})
    exits = pd.DataFrame({k: s.exits for k, s in enumerate(sigs)})
    pf = vbt.Portfolio.from_signals(close, entries, exits, fees=fee, init_cash=1000.0, freq="1h")
    value = pf.value().to_numpy()
    counts = pf.trades.count().to_numpy()

    np.testing.assert_allclose(res.metrics["final_equity"], value[-1], rtol=1e-9, atol=0)
    np.testing.assert_array_equal(res.metrics["trades"], counts)
    assert counts.sum() > 100  # the comparison covers many trades
    for k in (0, len(grid) // 2, len(grid) - 1):  # whole equity curves for a few combinations
        one = backtest(btc, fam, grid[k], costs=costs, interval="1h", detail=True)
        assert one.equity is not None
        np.testing.assert_allclose(one.equity, value[:, k], rtol=1e-9, atol=0)
        assert one.trades is not None and one.trades.height == counts[k]


def test_fused_grid_equals_per_combination_path() -> None:
    bars = make_bars(3000, seed=21)
    fam = get_family("sma_cross")
    grid = fam.grid(fast=[3, 7, 12], slow=[15, 40, 90])
    for costs in (CostModel(), CostModel(fill="close", fee=0.002, slippage_bps=5)):
        fused = run_grid(bars, fam, grid, costs=costs, interval="1h", start=200, stop=2900)
        assert fused.fused
        for k, params in enumerate(grid):
            one = backtest(bars, fam, params, costs=costs, interval="1h", start=200, stop=2900)
            for name, value in one.metrics.items():
                np.testing.assert_equal(fused.metrics[name][k], value)


def test_ema_cross_fused_equals_per_combination_path() -> None:
    bars = make_bars(2000, seed=22)
    fam = get_family("ema_cross")
    grid = fam.grid(fast=[5, 9], slow=[20, 50])
    fused = run_grid(bars, fam, grid, interval="1h")
    assert fused.fused
    for k, params in enumerate(grid):
        one = backtest(bars, fam, params, interval="1h")
        assert fused.metrics["final_equity"][k] == one.metrics["final_equity"]


def test_filtered_sma_cross_grid_runs_fused() -> None:
    bars = make_bars(2000, seed=23)
    fam = get_family("sma_cross")
    grid = fam.grid(fast=[5, 9], slow=[30], trend=[100], atr_mult=[2.0])
    res = run_grid(bars, fam, grid, interval="1h")
    assert res.fused and len(res) == 2
    one = run_signals(bars, fam.signals(bars, grid[1]), interval="1h")[0]
    assert res.metrics["final_equity"][1] == one["final_equity"]


class _NoForm(SmaCross):
    """A user-style family without a compiled form."""

    name = "sma_cross_uncompiled"

    def compiled(self, params: Params) -> None:  # type: ignore[override]
        return None


def test_family_without_compiled_form_takes_the_generic_path() -> None:
    bars = make_bars(2000, seed=23)
    fam = _NoForm()
    grid = fam.grid(fast=[5, 9], slow=[30])
    res = run_grid(bars, fam, grid, interval="1h")
    assert not res.fused and len(res) == 2
    one = backtest(bars, get_family("sma_cross"), grid[1], interval="1h")
    assert res.metrics["final_equity"][1] == one.metrics["final_equity"]
