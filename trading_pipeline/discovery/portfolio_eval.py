"""Discovery's evaluator for portfolio families: the :class:`~.evaluate.Evaluator` interface
(``segments``, ``window``, ``account``, ``buy_and_hold``) over a universe frame.

The same windows discipline as for one series: a window ``[start, stop)``'s target weights are
computed on ``frame[start - context_bars(params) : stop]`` only, so no bar at or after ``stop``
reaches the family. :meth:`PortfolioEvaluator.account` is ONE account over consecutive test
windows: each window's weights (computed on that window's bars and the warm-up before it) are
laid end to end and simulated once, so holdings and cash carry over each boundary and the switch
to the next window's parameters is a rebalance like any other (fees and slippage paid). The
benchmark beside a study (``buy_and_hold``) is the equal-weight basket of the universe's coins,
bought at the first fill and not rebalanced; :func:`coin_benchmarks` gives each coin's too.

:func:`evaluator_for` is what the tuner and :func:`~.results.collect` call: this evaluator for a
portfolio family, the single-series one otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from trading_pipeline.backtest.costs import CostModel, RiskRules
from trading_pipeline.backtest.engine import Prices
from trading_pipeline.backtest.portfolio import BASKET, PortfolioRun, benchmarks, simulate
from trading_pipeline.discovery.evaluate import Evaluator, Window
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import bars_per_year
from trading_pipeline.strategies.base import StrategyFamily
from trading_pipeline.strategies.portfolio import weights_of
from trading_pipeline.strategies.universe import SEP, Universe


def is_portfolio(family: StrategyFamily) -> bool:
    return bool(getattr(family, "portfolio", False))


def evaluator_for(
    bars: pl.DataFrame,
    family: StrategyFamily,
    *,
    interval: str,
    costs: CostModel | None = None,
    risk: RiskRules | None = None,
    cash: float = 1000.0,
) -> Evaluator:
    """The evaluator of ``family`` on ``bars`` (a universe frame for a portfolio family)."""
    if is_portfolio(family):
        return PortfolioEvaluator(
            bars, family, interval=interval, costs=costs, risk=risk, cash=cash
        )
    return Evaluator(bars, family, interval=interval, costs=costs, risk=risk, cash=cash)


class PortfolioEvaluator(Evaluator):
    """Evaluates one portfolio family on one universe frame (costs the same for every coin)."""

    def __init__(
        self,
        bars: pl.DataFrame,
        family: StrategyFamily,
        *,
        interval: str,
        costs: CostModel | None = None,
        risk: RiskRules | None = None,
        cash: float = 1000.0,
    ) -> None:
        if not is_portfolio(family):
            raise UserInputError(f"{family.name} is not a portfolio family")
        self.universe = Universe.of(bars)
        self.bars = bars
        self.family = family
        self.interval = interval
        self.costs = costs or CostModel()
        self.risk = risk or RiskRules()
        self.cash = cash
        self.n = bars.height
        self.bars_per_year = bars_per_year(interval)
        # the first coin's prices: only read by the fused batch path, which a portfolio family
        # (no compiled form) never takes
        first = self.universe.coins[0]
        cols = [
            np.ascontiguousarray(bars[f"{first}{SEP}{c}"].to_numpy(), dtype=np.float64)
            for c in ("open", "high", "low", "close")
        ]
        self.prices = Prices(*cols)

    def warm_up(self, start: int, stop: int) -> None:
        with contextlib.suppress(ValueError):
            self.segments(self.family.space.defaults(), [(start, stop)])

    def _targets(self, params: Mapping[str, Any], start: int, stop: int) -> tuple[int, Any]:
        """``(ctx, signals)`` of the frame ``[ctx, stop)``, ``ctx`` = start - context bars."""
        ctx = max(0, start - self.context_bars(params))
        return ctx, self.family.signals(self.bars.slice(ctx, stop - ctx), params)

    def _run(
        self, w: np.ndarray, decide: np.ndarray, a: int, b: int, starts: Sequence[int] = (0,)
    ) -> PortfolioRun:
        u = self.universe
        return simulate(
            u.open[a:b],
            u.close[a:b],
            w,
            decide,
            cash=self.cash,
            costs=self.costs,
            bars_per_year=self.bars_per_year,
            min_order_value=self.risk.min_order_value,
            starts=starts,
        )

    def _leg(self, params: Mapping[str, Any], start: int, stop: int) -> tuple[np.ndarray, ...]:
        ctx, sig = self._targets(params, start, stop)
        w = weights_of(sig, self.universe.coins)[start - ctx :]
        return w, np.asarray(sig.meta["rebalance"], dtype=bool)[start - ctx :]

    def segments(
        self, params: Mapping[str, Any], bounds: Sequence[tuple[int, int]]
    ) -> list[dict[str, float]]:
        start = min(b[0] for b in bounds)
        stop = max(b[1] for b in bounds)
        w, decide = self._leg(params, start, stop)
        return [
            self._run(w[a - start : b - start], decide[a - start : b - start], a, b).metrics
            for a, b in bounds
        ]

    def window(
        self, params: Mapping[str, Any], start: int, stop: int, *, detail: bool = False
    ) -> Window:
        w, decide = self._leg(params, start, stop)
        return self._window(self._run(w, decide, start, stop), start, stop, detail)

    def account(self, legs: Sequence[tuple[Mapping[str, Any], int, int]]) -> Window:
        ws, ds, starts = [], [], []
        first, last = legs[0][1], legs[-1][2]
        for params, start, stop in legs:
            w, decide = self._leg(params, start, stop)
            ws.append(w)
            ds.append(decide)
            starts.append(start - first)
        if sum(len(d) for d in ds) != last - first:
            raise UserInputError("the account's windows must be consecutive")
        run = self._run(np.vstack(ws), np.concatenate(ds), first, last, starts)
        return self._window(run, first, last, True)

    def _window(self, run: PortfolioRun, start: int, stop: int, detail: bool) -> Window:
        if not detail:
            return Window(start, stop, run.metrics)
        return Window(start, stop, run.metrics, run.returns, run.invested > 0, run.entries)

    def buy_and_hold(self, start: int, stop: int) -> Window:
        """The equal-weight basket over ``[start, stop)``: bought at the first fill, held."""
        run = coin_benchmarks(self, start, stop)[BASKET]
        return self._window(run, start, stop, True)


def coin_benchmarks(ev: PortfolioEvaluator, start: int, stop: int) -> dict[str, PortfolioRun]:
    """Buy-and-hold of each coin and the equal-weight basket (not rebalanced) over the bars
    ``[start, stop)`` of the evaluator's universe, with its costs."""
    u = ev.universe
    return benchmarks(
        u.open[start:stop],
        u.close[start:stop],
        u.coins,
        cash=ev.cash,
        costs=ev.costs,
        bars_per_year=ev.bars_per_year,
    )
