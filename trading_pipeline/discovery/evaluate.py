"""The one place discovery calls the backtest engine: evaluate parameters on bar windows.

Every evaluation of a window ``[start, stop)`` computes the family's signals on
``bars[ctx:stop]`` only, where ``ctx = start - context_bars(params)`` (three times the family's
warm-up plus a margin, so exponential indicators have converged). No bar at or after ``stop``
is ever handed to the strategy, so even a leaky user strategy cannot see past its window.
:meth:`Evaluator.window` simulates a window from cash (flat at its first bar; a position still
open at its end is marked at its last close): a trial's score on a train segment, or the
flat-restart figure of a test window. :meth:`Evaluator.account` is the out-of-sample account of
a study: consecutive test windows, each with its own parameters (signals computed on that
window's bars and the warm-up before it), traded as ONE account whose position carries over
the boundaries (:mod:`trading_pipeline.backtest.account`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from trading_pipeline.backtest.account import Leg, run_account
from trading_pipeline.backtest.costs import CostModel, RiskRules
from trading_pipeline.backtest.engine import Prices, check_bars, run_signals
from trading_pipeline.market.schema import bars_per_year
from trading_pipeline.strategies.base import StrategyFamily


@dataclass(frozen=True)
class Window:
    """Metrics of one window; per-bar detail when requested.

    ``returns[i]`` is the net return of bar ``start + i`` (close to close, fees and slippage
    included); ``in_position[i]`` whether a position was held at that close; ``entries[i]``
    whether a position was opened on that bar.
    """

    start: int
    stop: int
    metrics: dict[str, float]
    returns: np.ndarray | None = None
    in_position: np.ndarray | None = None
    entries: np.ndarray | None = None


class Evaluator:
    """Evaluates one family on one series with fixed costs, risk rules and starting cash."""

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
        check_bars(bars)
        self.bars = bars
        self.family = family
        self.interval = interval
        self.costs = costs or CostModel()
        self.risk = risk or RiskRules()
        self.cash = cash
        self.prices = Prices.of(bars)
        self.n = bars.height
        self.bars_per_year = bars_per_year(interval)

    def warm_up(self, start: int, stop: int) -> None:
        """Evaluate the default parameters once so compiled kernels are loaded before timing."""
        # defaults may not fit a tiny window; the first trial compiles then
        with contextlib.suppress(ValueError):
            self.segments(self.family.space.defaults(), [(start, stop)])

    def context_bars(self, params: Mapping[str, Any]) -> int:
        return 3 * int(self.family.warmup(params)) + 10

    def _slice(self, params: Mapping[str, Any], start: int, stop: int) -> tuple[int, Any, Prices]:
        ctx = max(0, start - self.context_bars(params))
        part = self.bars.slice(ctx, stop - ctx)
        p = self.prices
        prices = Prices(p.open[ctx:stop], p.high[ctx:stop], p.low[ctx:stop], p.close[ctx:stop])
        signals = self.family.signals(part, params)
        return ctx, signals, prices

    def segments(
        self, params: Mapping[str, Any], bounds: Sequence[tuple[int, int]]
    ) -> list[dict[str, float]]:
        """Metrics of consecutive windows (signals computed once, up to the last window's end)."""
        start = min(b[0] for b in bounds)
        stop = max(b[1] for b in bounds)
        ctx, signals, prices = self._slice(params, start, stop)
        out = []
        for a, b in bounds:
            metrics, _, _ = run_signals(
                self.bars,
                signals,
                cash=self.cash,
                costs=self.costs,
                risk=self.risk,
                interval=self.interval,
                start=a - ctx,
                stop=b - ctx,
                prices=prices,
            )
            out.append(metrics)
        return out

    def window(
        self, params: Mapping[str, Any], start: int, stop: int, *, detail: bool = False
    ) -> Window:
        """Metrics (and with ``detail`` the per-bar returns, position and entries) of a window."""
        ctx, signals, prices = self._slice(params, start, stop)
        metrics, equity, trades = run_signals(
            self.bars.slice(ctx, stop - ctx),
            signals,
            cash=self.cash,
            costs=self.costs,
            risk=self.risk,
            interval=self.interval,
            start=start - ctx,
            stop=stop - ctx,
            prices=prices,
            detail=detail,
        )
        if not detail or equity is None or trades is None:
            return Window(start, stop, metrics)
        return self._detailed(start, stop, metrics, equity, trades, start - ctx)

    def account(self, legs: Sequence[tuple[Mapping[str, Any], int, int]]) -> Window:
        """ONE account over consecutive windows ``(params, start, stop)``: window ``k`` trades
        with its own ``params`` from its first bar on, their signals computed on
        ``bars[start - context_bars(params) : stop]`` (warm-up before the window, never a bar
        after it); cash and an open position carry over each boundary, and a trade the switch
        of parameters causes pays fees and slippage like any other. With detail."""
        parts = []
        for params, start, stop in legs:
            ctx, signals, _ = self._slice(params, start, stop)
            parts.append(Leg(signals, ctx, start, stop))
        metrics, equity, trades = run_account(
            self.bars,
            parts,
            cash=self.cash,
            costs=self.costs,
            risk=self.risk,
            interval=self.interval,
            prices=self.prices,
        )
        first, last = parts[0].start, parts[-1].stop
        return self._detailed(first, last, metrics, equity, trades, first)

    def _detailed(
        self,
        start: int,
        stop: int,
        metrics: dict[str, float],
        equity: np.ndarray,
        trades: pl.DataFrame,
        off: int,
    ) -> Window:
        """Per-bar returns, positions and entries of ``[start, stop)`` from its equity curve
        and trades (trade bar ``off`` is the window's first bar)."""
        prev = np.concatenate([[self.cash], equity[:-1]])
        returns = np.where(prev > 0, equity / np.where(prev > 0, prev, 1.0) - 1.0, 0.0)
        length = stop - start
        in_pos = np.zeros(length, dtype=bool)
        entries = np.zeros(length, dtype=bool)
        for e, x in zip(trades["entry_bar"].to_list(), trades["exit_bar"].to_list(), strict=True):
            a = int(e) - off
            b = length if int(x) < 0 else int(x) - off
            if 0 <= a < length:
                entries[a] = True
                in_pos[a:b] = True
        return Window(start, stop, metrics, returns, in_pos, entries)

    def buy_and_hold(self, start: int, stop: int) -> Window:
        """The benchmark over ``[start, stop)``: bought at the first fill, held, same costs."""
        from trading_pipeline.strategies.registry import get_family

        bench = Evaluator(
            self.bars,
            get_family("buy_and_hold"),
            interval=self.interval,
            costs=self.costs,
            risk=RiskRules(min_order_value=self.risk.min_order_value),
            cash=self.cash,
        )
        return bench.window({}, start, stop, detail=True)


def metrics_from_returns(
    returns: np.ndarray,
    *,
    bars_per_year: float,
    in_position: np.ndarray | None = None,
    entries: np.ndarray | None = None,
) -> dict[str, float]:
    """Sharpe (annualised), total return, CAGR, max drawdown, trades, exposure and bars of a
    per-bar return series (the concatenated out-of-sample bars, or one regime's share of them)."""
    r = np.asarray(returns, dtype=float)
    n = int(r.size)
    out: dict[str, float] = {"bars": float(n)}
    if n == 0:
        out.update(sharpe=0.0, total_return=0.0, cagr=0.0, max_drawdown=0.0)
    else:
        growth = np.cumprod(1.0 + r)
        peak = np.maximum.accumulate(np.concatenate([[1.0], growth]))[1:]
        sd = float(r.std(ddof=1)) if n > 1 else 0.0
        out["sharpe"] = float(r.mean() / sd * math.sqrt(bars_per_year)) if sd > 0 else 0.0
        out["total_return"] = float(growth[-1] - 1.0)
        years = n / bars_per_year
        out["cagr"] = float(growth[-1] ** (1.0 / years) - 1.0) if growth[-1] > 0 else -1.0
        out["max_drawdown"] = float(np.max(1.0 - growth / peak))
    if in_position is not None:
        out["exposure"] = float(np.mean(in_position)) if n else 0.0
    if entries is not None:
        out["trades"] = float(np.sum(entries))
    return out
