"""Bollinger-band mean reversion (a 5-minute scalping family): buy a close below the lower
band, sell back at the middle band, with a tight take-profit and stop-loss by default."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl

from trading_pipeline.strategies import indicators as ind
from trading_pipeline.strategies import lines
from trading_pipeline.strategies.base import Param, Params, SearchSpace, Signals, StrategyFamily
from trading_pipeline.strategies.compiled import BAND, Compiled
from trading_pipeline.strategies.rsi_reversion import STOP_LOSS, TAKE_PROFIT, with_exits
from trading_pipeline.strategies.sma_cross import close_of


class BollingerReversion(StrategyFamily):
    """Enter below ``mid - k·σ``; exit above the middle band or at the TP/SL."""

    name: ClassVar[str] = "bollinger_reversion"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "close below the lower band, exit at the mean, tight TP/SL"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param("window", "int", 20, low=5, high=200, step=1),
            Param("k", "float", 2.0, low=0.5, high=4.0, step=0.1),
            STOP_LOSS,
            TAKE_PROFIT,
        )
    )

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        close = close_of(bars)
        w = int(params["window"])  # type: ignore[arg-type]
        mid = ind.sma(close, w)
        lower = mid - float(params["k"]) * ind.rolling_std(close, w)  # type: ignore[arg-type]
        with np.errstate(invalid="ignore"):
            entries = close < lower
            exits = close > mid
        return with_exits(Signals.from_arrays(entries, exits), params)

    def compiled(self, params: Params) -> Compiled:
        w = int(params["window"])  # type: ignore[arg-type]
        return Compiled(
            BAND,
            ((lines.SMA, w), (lines.STD, w)),
            args=(float(params["k"]),),  # type: ignore[arg-type]
            stop_loss=float(params["stop_loss"]) or None,  # type: ignore[arg-type]
            take_profit=float(params["take_profit"]) or None,  # type: ignore[arg-type]
        )
