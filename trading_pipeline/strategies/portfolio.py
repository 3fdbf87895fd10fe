"""Portfolio families: target weights per coin of a universe, on the strategy contract.

A portfolio family reads a universe frame (:mod:`.universe`) and decides, at each bar's close
from bars ``<= t`` only, the fraction of equity each coin should hold (the rest is cash; weights
are ``>= 0`` and sum to at most 1: spot, no leverage) and whether to rebalance to them (a
*decision* bar). The simulator (:mod:`trading_pipeline.backtest.portfolio`) fills a decision at
the next bar's open, paying each order's fee and slippage, and lets the holdings drift between
decisions.

:meth:`PortfolioFamily.signals` returns ordinary :class:`Signals`, so the tuner, the lookahead
audit and the sandbox run on it unchanged: ``meta['weights']`` (coin → the weights held from the
latest decision on, per bar), ``meta['rebalance']`` (the decision bars) and flags marking a coin
entered (``LONG_ENTRY``: its weight goes from 0 to positive at a decision) or left
(``LONG_EXIT``), per bar for the whole universe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import polars as pl

from trading_pipeline.strategies import indicators as ind
from trading_pipeline.strategies.base import (
    LONG_ENTRY,
    LONG_EXIT,
    Params,
    Signals,
    StrategyFamily,
)
from trading_pipeline.strategies.universe import Universe, universe_frame


def held(weights: np.ndarray, decide: np.ndarray) -> np.ndarray:
    """The weights of the latest decision bar ``<= t`` per bar (0 before the first)."""
    n = weights.shape[0]
    idx = np.where(decide, np.arange(n), -1)
    last = np.maximum.accumulate(idx) if n else idx
    out = np.where((last >= 0)[:, None], weights[np.maximum(last, 0)], 0.0)
    return np.asarray(out)


def realised_vol(close: np.ndarray, window: int, bars_per_year: float) -> np.ndarray:
    """Annualised standard deviation of log returns over the last ``window`` returns, per
    column (NaN until ``window`` returns exist); causal."""
    out = np.full(close.shape, np.nan)
    lr = np.diff(np.log(close), axis=0)
    for j in range(close.shape[1]):
        if lr.shape[0] >= window:
            out[1:, j] = ind.rolling_std(np.ascontiguousarray(lr[:, j]), int(window))
    return out * np.sqrt(bars_per_year)


def trailing_return(close: np.ndarray, window: int) -> np.ndarray:
    """``close[t] / close[t - window] - 1`` per column (NaN for the first ``window`` bars)."""
    out = np.full(close.shape, np.nan)
    if close.shape[0] > window:
        out[window:] = close[window:] / close[:-window] - 1.0
    return out


class PortfolioFamily(StrategyFamily):
    """Base of the multi-asset families: implement :meth:`targets`."""

    portfolio: ClassVar[bool] = True
    inputs: ClassVar[int] = 2

    def targets(self, u: Universe, params: Params) -> tuple[np.ndarray, np.ndarray]:
        """``(weights (bars, coins), decide (bars,))`` computed from bars ``<= t`` at bar t."""
        raise NotImplementedError

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        params = self.validate(params)
        u = Universe.of(bars)
        raw, decide = self.targets(u, params)
        raw = np.clip(np.nan_to_num(np.asarray(raw, dtype=np.float64)), 0.0, 1.0)
        total = raw.sum(axis=1, keepdims=True)
        raw = np.where(total > 1.0, raw / np.where(total > 1.0, total, 1.0), raw)
        decide = np.asarray(decide, dtype=bool)
        w = held(raw, decide)
        on = w > 0
        before = np.vstack([np.zeros((1, on.shape[1]), dtype=bool), on[:-1]])
        flags = np.where((on & ~before).any(axis=1), LONG_ENTRY, 0).astype(np.int8)
        flags |= np.where((before & ~on).any(axis=1), LONG_EXIT, 0).astype(np.int8)
        sig = Signals(flags=flags)
        sig.meta.update(
            weights={c: w[:, j] for j, c in enumerate(u.coins)},
            rebalance=decide,
            coins=",".join(u.coins),
        )
        return sig

    def signals_multi(self, series: Mapping[str, pl.DataFrame], params: Params) -> Signals:
        """The coins' bars (one frame per coin) joined into a universe frame first."""
        return self.signals(universe_frame(series), params)


def weights_of(sig: Signals, coins: tuple[str, ...] | list[str]) -> np.ndarray:
    """``meta['weights']`` of a portfolio family's signals as a ``(bars, coins)`` array."""
    w = sig.meta["weights"]
    return np.column_stack([np.asarray(w[c], dtype=np.float64) for c in coins])
