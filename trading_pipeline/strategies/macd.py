"""MACD: long when the MACD line (fast EMA - slow EMA) crosses above its signal EMA."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
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
from trading_pipeline.strategies.compiled import MACD, Compiled
from trading_pipeline.strategies.sma_cross import close_of


def ema_after_nan(x: np.ndarray, window: int) -> np.ndarray:
    """EMA of a series with a NaN warm-up prefix (the EMA starts at its first valid value)."""
    valid = np.flatnonzero(~np.isnan(x))
    out = np.full(x.shape[0], np.nan)
    if valid.size:
        out[valid[0] :] = ind.ema(np.ascontiguousarray(x[valid[0] :]), window)
    return out


class Macd(StrategyFamily):
    """MACD line / signal line crossover, long only."""

    name: ClassVar[str] = "macd"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "MACD line crosses its signal line"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param("fast", "int", 12, low=2, high=100, step=1),
            Param("slow", "int", 26, low=3, high=300, step=1),
            Param("signal", "int", 9, low=2, high=100, step=1),
        ),
        constraints=(LessThan("fast", "slow"),),
    )

    def warmup(self, params: Params) -> int:
        """The MACD line forgets its seeds after the slower EMA's memory; its signal EMA,
        seeded from the line, needs its own memory after that."""
        fast, slow = int(params["fast"]), int(params["slow"])  # type: ignore[arg-type]
        return ind.ema_warmup(max(fast, slow)) + ind.ema_warmup(int(params["signal"]))  # type: ignore[arg-type]

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        close = close_of(bars)
        line = ind.ema(close, int(params["fast"])) - ind.ema(close, int(params["slow"]))  # type: ignore[arg-type]
        sig = ema_after_nan(line, int(params["signal"]))  # type: ignore[arg-type]
        return Signals.from_arrays(ind.cross_above(line, sig), ind.cross_below(line, sig))

    def compiled(self, params: Params) -> Compiled:
        fast, slow = int(params["fast"]), int(params["slow"])  # type: ignore[arg-type]
        return Compiled(
            MACD,
            ((lines.EMA, fast), (lines.EMA, slow)),
            args=(float(params["signal"]),),  # type: ignore[arg-type]
        )
