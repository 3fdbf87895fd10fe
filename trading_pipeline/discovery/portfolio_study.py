"""A portfolio family's walk-forward study over a universe, through discovery's own path.

The universe frame (:mod:`trading_pipeline.strategies.universe`) is the series: the lookahead
gate audits the family on it (a leaky family is refused before any trial), the Optuna
walk-forward tuner (:func:`~.tuning.tune`) scores trials on train windows only, and
:func:`~.results.collect` builds the out-of-sample result — ONE account over the concatenated
test windows, deflated for every trial — so the ranking and the matrix take it like any other
study. Beside it, :func:`oos_benchmarks` gives buy-and-hold of each coin and the equal-weight
basket over the same out-of-sample bars.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.portfolio import PortfolioRun
from trading_pipeline.discovery.gate import require_no_lookahead
from trading_pipeline.discovery.portfolio_eval import (
    PortfolioEvaluator,
    coin_benchmarks,
    is_portfolio,
)
from trading_pipeline.discovery.results import StudyResult, collect
from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.base import StrategyFamily

if TYPE_CHECKING:
    from optuna.storages import BaseStorage


def tune_universe(
    frame: pl.DataFrame,
    family: StrategyFamily,
    *,
    series: str,
    interval: str,
    storage: BaseStorage,
    n_trials: int,
    walk: WalkForward | None = None,
    costs: CostModel | None = None,
    seed: int | None = 0,
    audit_cache: str | Path | None = None,
) -> StudyResult:
    """Gate, tune and judge ``family`` on the universe ``frame`` (series key ``series``)."""
    if not is_portfolio(family):
        raise UserInputError(f"{family.name} is not a portfolio family")
    spec = make_spec(frame, family, series=series, interval=interval, walk=walk, costs=costs)
    require_no_lookahead(family, frame, cache_dir=audit_cache, data=series)
    tune(frame, family, spec=spec, storage=storage, n_trials=n_trials, seed=seed)
    return collect(frame, family, spec=spec, storage=storage)


def oos_benchmarks(
    frame: pl.DataFrame, result: StudyResult, *, costs: CostModel | None = None
) -> dict[str, PortfolioRun]:
    """Buy-and-hold of each coin and the equal-weight basket (not rebalanced) over the study's
    out-of-sample bars (first test bar to last), with the study's costs and cash."""
    spec = result.spec
    ev = PortfolioEvaluator(
        frame,
        _family(spec.family),
        interval=spec.interval,
        costs=costs or spec.costs,
        cash=spec.cash,
    )
    return coin_benchmarks(ev, result.folds[0].test[0], result.folds[-1].test[1])


def _family(name: str) -> StrategyFamily:
    # lazy: the registry imports every family module; only needed to rebuild an evaluator
    from trading_pipeline.strategies.registry import get_family

    return get_family(name)
