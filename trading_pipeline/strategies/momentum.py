"""Momentum (the momentum bot): hold while the rate of change over ``window`` bars is above
``threshold``, flat otherwise."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl

from trading_pipeline.strategies import indicators as ind
from trading_pipeline.strategies import lines
from trading_pipeline.strategies.base import Param, Params, SearchSpace, Signals, StrategyFamily
from trading_pipeline.strategies.compiled import ABOVE, Compiled
from trading_pipeline.strategies.sma_cross import close_of


class Momentum(StrategyFamily):
    """Rate-of-change trend following, long only."""

    name: ClassVar[str] = "momentum"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "long while ROC(window) > threshold"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param("window", "int", 24, low=1, high=500, step=1),
            Param("threshold", "float", 0.0, low=-0.2, high=0.5, step=0.005),
        )
    )

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        r = ind.roc(close_of(bars), int(params["window"]))  # type: ignore[arg-type]
        with np.errstate(invalid="ignore"):
            target = np.where(np.isnan(r), 0, r > float(params["threshold"]))  # type: ignore[arg-type]
        return Signals.from_positions(target)

    def compiled(self, params: Params) -> Compiled:
        window = int(params["window"])  # type: ignore[arg-type]
        return Compiled(ABOVE, ((lines.ROC, window),), args=(float(params["threshold"]),))  # type: ignore[arg-type]
