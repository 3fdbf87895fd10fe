"""EMA cross: long when the fast exponential mean crosses above the slow one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import polars as pl

from trading_pipeline.strategies import indicators as ind
from trading_pipeline.strategies.base import (
    LessThan,
    Param,
    Params,
    SearchSpace,
    Signals,
    StrategyFamily,
)
from trading_pipeline.strategies.lines import line_index
from trading_pipeline.strategies.sma_cross import close_of


class EmaCross(StrategyFamily):
    """Fast/slow exponential-moving-average crossover, long only."""

    name: ClassVar[str] = "ema_cross"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "fast EMA crosses slow EMA"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param("fast", "int", 12, low=2, high=200, step=1, help="fast EMA window"),
            Param("slow", "int", 26, low=3, high=400, step=1, help="slow EMA window"),
        ),
        constraints=(LessThan("fast", "slow"),),
    )

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        close = close_of(bars)
        fast = ind.ema(close, int(params["fast"]))  # type: ignore[arg-type]
        slow = ind.ema(close, int(params["slow"]))  # type: ignore[arg-type]
        return Signals.from_arrays(ind.cross_above(fast, slow), ind.cross_below(fast, slow))

    def cross_lines(
        self, bars: pl.DataFrame, combos: Sequence[Params]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        windows, ia, ib = line_index(combos, "fast", "slow")
        close = close_of(bars)
        lines = np.empty((windows.shape[0], close.shape[0]))
        for r, w in enumerate(windows):
            lines[r] = ind.ema(close, int(w))
        return lines, ia, ib
