"""EMA cross: long when the fast exponential mean crosses above the slow one."""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from trading_pipeline.strategies import indicators as ind
from trading_pipeline.strategies import lines
from trading_pipeline.strategies.base import (
    LessThan,
    Param,
    Params,
    SearchSpace,
    Signals,
    StrategyFamily,
)
from trading_pipeline.strategies.compiled import CROSS, NO_LINE, Compiled
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

    def warmup(self, params: Params) -> int:
        """The slow EMA's memory of its seed (the fast one forgets sooner)."""
        return ind.ema_warmup(max(int(params["fast"]), int(params["slow"])))  # type: ignore[arg-type]

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        close = close_of(bars)
        fast = ind.ema(close, int(params["fast"]))  # type: ignore[arg-type]
        slow = ind.ema(close, int(params["slow"]))  # type: ignore[arg-type]
        return Signals.from_arrays(ind.cross_above(fast, slow), ind.cross_below(fast, slow))

    def compiled(self, params: Params) -> Compiled:
        return Compiled(
            CROSS,
            (
                (lines.EMA, int(params["fast"])),  # type: ignore[arg-type]
                (lines.EMA, int(params["slow"])),  # type: ignore[arg-type]
                NO_LINE,
                NO_LINE,
                NO_LINE,
            ),
            args=(1.0, 0.0),
        )
