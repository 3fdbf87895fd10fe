"""Donchian breakout: buy a close above the highest high of the previous ``window`` bars,
sell a close below the lowest low of the previous ``exit_window`` bars."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl

from trading_pipeline.strategies import indicators as ind
from trading_pipeline.strategies import lines
from trading_pipeline.strategies.base import Param, Params, SearchSpace, Signals, StrategyFamily
from trading_pipeline.strategies.compiled import BREAKOUT, Compiled
from trading_pipeline.strategies.sma_cross import close_of, column


class DonchianBreakout(StrategyFamily):
    """Channel breakout, long only."""

    name: ClassVar[str] = "donchian_breakout"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "close breaks the prior N-bar high; exit below the M-bar low"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param("window", "int", 20, low=2, high=400, step=1),
            Param("exit_window", "int", 10, low=2, high=400, step=1),
        )
    )

    def warmup(self, params: Params) -> int:
        return max(int(params["window"]), int(params["exit_window"])) + 1  # type: ignore[arg-type]

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        close = close_of(bars)
        upper = ind.shift(ind.rolling_max(column(bars, "high"), int(params["window"])))  # type: ignore[arg-type]
        lower = ind.shift(ind.rolling_min(column(bars, "low"), int(params["exit_window"])))  # type: ignore[arg-type]
        with np.errstate(invalid="ignore"):
            return Signals.from_arrays(close > upper, close < lower)

    def compiled(self, params: Params) -> Compiled:
        window, exit_window = int(params["window"]), int(params["exit_window"])  # type: ignore[arg-type]
        return Compiled(
            BREAKOUT, ((lines.HIGH_MAX_PREV, window), (lines.LOW_MIN_PREV, exit_window))
        )
