"""The out-of-sample account: one account over the concatenated test windows, checked against
a plain-Python reference backtest, beside the flat-restart figure it replaces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.discovery.evaluate import Evaluator, metrics_from_returns
from trading_pipeline.discovery.results import collect
from trading_pipeline.discovery.splits import walk_forward
from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.base import Param, Params, SearchSpace, Signals, StrategyFamily
from trading_pipeline_tests.fakes.bars import START_2021, make_bars


class MaBand(StrategyFamily):
    """Long above ``ma × (1 + band)``, out below ``ma × (1 - band)`` (a state-like rule: a new
    ``band`` can exit at once), with a stop-loss / take-profit fraction per parameter set."""

    name: ClassVar[str] = "ma_band_test"
    version: ClassVar[int] = 1
    space: ClassVar[SearchSpace] = SearchSpace(
        (
            Param("window", "int", 10, low=2, high=60),
            Param("band", "float", 0.0, low=0.0, high=0.2),
            Param("stop_loss", "float", 0.0, low=0.001, high=0.5, off=0.0),
            Param("take_profit", "float", 0.0, low=0.001, high=0.5, off=0.0),
        )
    )

    def warmup(self, params: Params) -> int:
        return int(params["window"])  # type: ignore[arg-type]

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        w = int(params["window"])  # type: ignore[arg-type]
        band = float(params["band"])  # type: ignore[arg-type]
        c = bars["close"].to_numpy()
        ma = bars["close"].rolling_mean(w).to_numpy()
        with np.errstate(invalid="ignore"):
            sig = Signals.from_arrays(c > ma * (1 + band), c < ma * (1 - band))
        sig.meta["stop_loss"] = float(params["stop_loss"]) or None  # type: ignore[arg-type]
        sig.meta["take_profit"] = float(params["take_profit"]) or None  # type: ignore[arg-type]
        return sig


FAMILY = MaBand()
COSTS = CostModel(fee=0.001, slippage_bps=5.0)
CASH = 1000.0


@dataclass
class Reference:
    """What the plain loop did: equity per bar, entries, and the boundary events seen."""

    equity: list[float] = field(default_factory=list)
    entries: list[int] = field(default_factory=list)
    carried: list[int] = field(default_factory=list)  # boundaries crossed holding a position
    switch_trades: list[int] = field(default_factory=list)  # orders only the new params gave
    level_exits: list[int] = field(default_factory=list)  # stop-loss / take-profit fills


def _decide(c: np.ndarray, t: int, params: Mapping[str, Any]) -> tuple[bool, bool]:
    """(entry, exit) at bar ``t``'s close from bars ``<= t`` only (plain loop, no library)."""
    w = int(params["window"])
    if t + 1 < w:
        return False, False
    ma = sum(float(x) for x in c[t - w + 1 : t + 1]) / w
    band = float(params["band"])
    return bool(c[t] > ma * (1 + band)), bool(c[t] < ma * (1 - band))


def reference_account(bars: pl.DataFrame, legs: list[tuple[dict[str, Any], int, int]]) -> Reference:
    """One long-only account, fills at the next open, fee and slippage on every fill, the
    stop-loss / take-profit of the parameters that decided the entry, stops first in a bar."""
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    fee, slip = COSTS.fee, COSTS.slippage
    ref = Reference()
    cash, units = CASH, 0.0
    stop_px = tp_px = None
    pend_close, pend_open, pend_levels = False, False, (0.0, 0.0)
    for k, (params, a, b) in enumerate(legs):
        for t in range(a, b):
            if t == a and k > 0 and units > 0:
                ref.carried.append(t)
            if pend_close and units > 0:
                cash += units * o[t] * (1 - slip) * (1 - fee)
                units = 0.0
            if pend_open and units == 0:
                px = o[t] * (1 + slip)
                units = cash / (1 + fee) / px
                cash = 0.0
                sl, tp = pend_levels
                stop_px = px * (1 - sl) if sl else None
                tp_px = px * (1 + tp) if tp else None
                ref.entries.append(t)
            pend_close = pend_open = False
            if units > 0:
                if stop_px is not None and lo[t] <= stop_px:
                    cash += units * min(o[t], stop_px) * (1 - slip) * (1 - fee)
                    units = 0.0
                    ref.level_exits.append(t)
                elif tp_px is not None and h[t] >= tp_px:
                    cash += units * max(o[t], tp_px) * (1 - slip) * (1 - fee)
                    units = 0.0
                    ref.level_exits.append(t)
            entry, exit_ = _decide(c, t, params)
            if units > 0:
                pend_close = exit_ and not entry
            else:
                pend_open = entry and not exit_
                pend_levels = (float(params["stop_loss"]), float(params["take_profit"]))
            if t == a and k > 0 and (pend_close or pend_open):
                e, x = _decide(c, t, legs[k - 1][0])  # what the old parameters said
                if not (x and not e if units > 0 else e and not x):
                    ref.switch_trades.append(t)
            ref.equity.append(cash + units * c[t])
    return ref


def _setup() -> tuple[pl.DataFrame, list[tuple[dict[str, Any], int, int]]]:
    bars = make_bars(420, seed=16, trend="walk", start=START_2021, vol=0.012)
    folds = walk_forward(bars.height, folds=3)
    chosen = [
        {"window": 8, "band": 0.0, "stop_loss": 0.0, "take_profit": 0.0},
        {"window": 20, "band": 0.002, "stop_loss": 0.02, "take_profit": 0.0},
        {"window": 5, "band": 0.0, "stop_loss": 0.0, "take_profit": 0.015},
    ]
    legs = [
        (FAMILY.validate(p), f.test_start, f.test_stop) for p, f in zip(chosen, folds, strict=True)
    ]
    return bars, legs


def test_continuous_account_matches_a_plain_reference_backtest() -> None:
    bars, legs = _setup()
    ev = Evaluator(bars, FAMILY, interval="1h", costs=COSTS, cash=CASH)
    acct = ev.account(legs)
    ref = reference_account(bars, legs)
    # the scenario holds what the test is about: a position carried over a boundary and a
    # trade that only the switch of parameters caused
    assert ref.carried, "no position was held across a fold boundary"
    assert ref.switch_trades, "no trade was caused by the switch of parameters"
    assert ref.level_exits, "no stop-loss / take-profit fired"
    assert acct.returns is not None and acct.entries is not None
    equity = CASH * np.cumprod(1.0 + acct.returns)
    np.testing.assert_allclose(equity, ref.equity, rtol=1e-9, atol=0)
    first = legs[0][1]
    assert [first + int(i) for i in np.flatnonzero(acct.entries)] == ref.entries
    assert acct.metrics["final_equity"] == pytest.approx(ref.equity[-1], rel=1e-9)


def test_bars_after_a_window_never_reach_it() -> None:
    """Rewriting every bar after window 1 changes nothing in windows 0 and 1."""
    bars, legs = _setup()
    cut = legs[1][2]
    noise = np.ones(bars.height)
    noise[cut:] = np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.03, bars.height - cut)))
    changed = bars.with_columns(
        [(pl.col(c) * pl.Series(noise)).alias(c) for c in ("open", "high", "low", "close")]
    )
    runs = [Evaluator(b, FAMILY, interval="1h", costs=COSTS).account(legs) for b in (bars, changed)]
    a, b = (r.returns for r in runs)
    assert a is not None and b is not None
    n = cut - legs[0][1]
    np.testing.assert_array_equal(a[:n], b[:n])
    assert not np.array_equal(a[n:], b[n:])


@pytest.mark.slow  # an Optuna walk-forward study in a journal file
def test_study_reports_the_continuous_account_and_labels_the_flat_restart(tmp_path: Path) -> None:
    """``collect``: ``returns``/``metrics`` are the continuous account over the folds' chosen
    parameters; the flat-restart column is each test window from cash, as before."""
    bars = make_bars(1200, seed=7, trend="walk", start=START_2021)
    storage = open_storage(None, data_dir=tmp_path)
    spec = make_spec(bars, FAMILY, series="spot-RW-1h", interval="1h", walk=WalkForward(folds=3))
    tune(bars, FAMILY, spec=spec, storage=storage, n_trials=8, seed=2)
    res = collect(bars, FAMILY, spec=spec, storage=storage)
    ev = Evaluator(bars, FAMILY, interval="1h", costs=spec.costs, cash=spec.cash)
    legs = [(f.params, f.test[0], f.test[1]) for f in res.folds]
    acct = ev.account(legs)
    np.testing.assert_array_equal(res.returns, acct.returns)
    assert res.metrics["total_return"] == pytest.approx(acct.metrics["total_return"], rel=1e-9)
    # the flat restart: the old per-window simulation, concatenated
    flat = [ev.window(p, a, b, detail=True) for p, a, b in legs]
    flat_returns = np.concatenate([w.returns for w in flat if w.returns is not None])
    np.testing.assert_array_equal(res.flat_restart_returns, flat_returns)
    old = metrics_from_returns(
        flat_returns,
        bars_per_year=ev.bars_per_year,
        in_position=np.concatenate([w.in_position for w in flat if w.in_position is not None]),
        entries=np.concatenate([w.entries for w in flat if w.entries is not None]),
    )
    assert res.flat_restart_metrics == old
    for f, w in zip(res.folds, flat, strict=True):
        np.testing.assert_equal(f.flat_restart_metrics, w.metrics)  # NaN == NaN
    # the deflated Sharpe is the continuous account's
    assert res.dsr.n_bars == res.returns.size
    summary = res.summary()
    assert summary["oos"] == res.metrics and summary["oos_flat_restart"] == old
    assert summary["oos_account"].startswith("continuous")
    assert summary["folds"][0]["test_return_flat_restart"] == flat[0].metrics["total_return"]


def test_windows_must_follow_each_other() -> None:
    bars, legs = _setup()
    ev = Evaluator(bars, FAMILY, interval="1h", costs=COSTS)
    (p0, a0, b0), (p1, a1, b1) = legs[0], legs[1]
    with pytest.raises(UserInputError, match="consecutive"):
        ev.account([(p0, a0, b0), (p1, a1 + 1, b1)])  # a gap of one bar
    with pytest.raises(UserInputError, match="consecutive"):
        ev.account([(p0, a0, b0), (p1, a1 - 1, b1)])  # an overlap
