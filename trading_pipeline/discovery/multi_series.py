"""Walk-forward judging of the multi-series families (arbitrage, hedging) over a grid.

The multi-series *simulator* is the engine's (:mod:`trading_pipeline.backtest.multi`); choosing
parameters on train windows, trading them on the test windows and deflating the out-of-sample
Sharpe ratio for every combination tried is discovery's, as for the tuned single-series families.
Unlike those (one continuous account, :meth:`.evaluate.Evaluator.account`), each test window
here is still simulated on its own from the starting inventory and the windows' returns are
chained: a flat-restart figure (the multi-series simulations carry no state across windows yet).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.engine import resolve_family
from trading_pipeline.backtest.multi import ArbSettings, backtest_multi
from trading_pipeline.discovery.results import deflate, trial_variance
from trading_pipeline.discovery.splits import walk_forward
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import bars_per_year
from trading_pipeline.strategies.base import StrategyFamily


@dataclass
class WalkForwardMulti:
    """Out-of-sample result of :func:`walk_forward_multi`: per fold the chosen parameters and
    the test-window metrics, plus the concatenated test windows' totals, with the deflated
    Sharpe ratio for every combination tried (``dsr_probability``, as discovery reports it)."""

    folds: list[dict[str, Any]]
    oos: dict[str, float]


def walk_forward_multi(
    series: Mapping[str, pl.DataFrame],
    family: StrategyFamily | str,
    grid: Sequence[Mapping[str, Any]],
    *,
    folds: int = 4,
    interval: str,
    cash: float = 1000.0,
    costs: Mapping[str, CostModel] | CostModel | None = None,
    objective: str = "total_return",
    arb: ArbSettings | None = None,
    n_bars: int | None = None,
    cash_unless_positive: bool = True,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
) -> WalkForwardMulti:
    """Pick the best of ``grid`` on each train window by ``objective`` and trade it on the test
    window that follows (the discovery walk-forward's split, :func:`~.splits.walk_forward`), each window
    simulated by :func:`~trading_pipeline.backtest.multi.backtest_multi`.
    Only the test windows are reported. With ``cash_unless_positive`` a fold whose best train
    score is not positive stays in cash (return 0; ``test`` still shows what the best
    combination would have done). The concatenated test windows' per-bar returns are deflated
    for ``len(grid) × folds`` trials, their Sharpe variance taken over every train-window trial as
    :func:`~trading_pipeline.discovery.results.trial_variance` does for tuned studies."""
    fam = resolve_family(family)
    if not grid:
        raise UserInputError("the grid is empty")
    if n_bars is None:
        n_bars = len(fam.signals_multi(series, fam.validate(grid[0])).meta["open_time"])
    try:
        splits = walk_forward(n_bars, folds=folds)
    except ValueError as exc:
        raise UserInputError(str(exc)) from exc
    out: list[dict[str, Any]] = []
    growth = 1.0
    bench_growth = 1.0
    per_bar = math.sqrt(bars_per_year(interval))
    fold_sharpes: list[list[float]] = []
    oos_returns: list[np.ndarray] = []
    for fold in splits:
        scored = []
        train_sharpes = []
        for params in grid:
            r = backtest_multi(
                series,
                fam,
                params,
                cash=cash,
                costs=costs,
                interval=interval,
                start=fold.train_start,
                stop=fold.train_stop,
                arb=arb,
            )
            scored.append((r.metrics[objective], r.metrics.get("trades", 0.0), r.params))
            train_sharpes.append(float(r.metrics.get("sharpe", 0.0)) / per_bar)
        fold_sharpes.append(train_sharpes)
        # ties (e.g. no combination trades) go to the one trading least
        best_score, _, best = max(scored, key=lambda s: (s[0], -s[1]))
        test = backtest_multi(
            series,
            fam,
            best,
            cash=cash,
            costs=costs,
            interval=interval,
            start=fold.test_start,
            stop=fold.test_stop,
            arb=arb,
            detail=True,
        )
        in_cash = cash_unless_positive and not best_score > 0
        ret = 0.0 if in_cash else test.metrics["total_return"]
        n_test = fold.test_stop - fold.test_start
        if in_cash or test.scored_equity is None:
            oos_returns.append(np.zeros(n_test))
        else:
            eq = np.asarray(test.scored_equity, dtype=float)
            oos_returns.append(eq / np.concatenate([[cash], eq[:-1]]) - 1.0)
        growth *= 1.0 + ret
        bench_growth *= 1.0 + test.benchmark["total_return"]
        row = {
            "fold": fold.index,
            "params": best,
            "train_score": best_score,
            "cash": in_cash,
            "return": ret,
            "test": test.metrics,
            "benchmark": test.benchmark,
        }
        out.append(row)
        if on_fold:
            on_fold(row)
    n_trials = len(grid) * len(splits)
    dsr = deflate(np.concatenate(oos_returns), trial_variance(fold_sharpes), n_trials)
    return WalkForwardMulti(
        out,
        {
            "total_return": growth - 1.0,
            "buy_and_hold_return": bench_growth - 1.0,
            "sharpe_per_bar": dsr.sharpe,
            "dsr_benchmark_per_bar": dsr.benchmark,
            "dsr_probability": dsr.probability,
            "n_trials": float(n_trials),
        },
    )
