"""RSI mean reversion (the 5-minute scalping family): buy oversold, sell overbought, with a
tight take-profit and stop-loss by default (parameters, so the tuner can move them)."""

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
from trading_pipeline.strategies.compiled import OSC, Compiled
from trading_pipeline.strategies.sma_cross import close_of

STOP_LOSS = Param(
    "stop_loss",
    "float",
    0.01,
    low=0.002,
    high=0.1,
    step=0.001,
    off=0.0,
    help="stop-loss fraction below entry; 0 = none",
)
TAKE_PROFIT = Param(
    "take_profit",
    "float",
    0.015,
    low=0.002,
    high=0.2,
    step=0.001,
    off=0.0,
    help="take-profit fraction above entry; 0 = none",
)


def with_exits(signals: Signals, params: Params) -> Signals:
    """Attach the family's stop-loss / take-profit (used unless the risk rules set their own)."""
    signals.meta["stop_loss"] = float(params["stop_loss"]) or None  # type: ignore[arg-type]
    signals.meta["take_profit"] = float(params["take_profit"]) or None  # type: ignore[arg-type]
    return signals


class RsiReversion(StrategyFamily):
    """Enter when RSI falls below ``lower``; exit above ``upper`` or at the TP/SL."""

    name: ClassVar[str] = "rsi_reversion"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "RSI oversold entry, overbought exit, tight TP/SL"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param("window", "int", 14, low=2, high=100, step=1),
            Param("lower", "float", 30.0, low=5.0, high=50.0, step=1.0),
            Param("upper", "float", 70.0, low=50.0, high=95.0, step=1.0),
            STOP_LOSS,
            TAKE_PROFIT,
        ),
        constraints=(LessThan("lower", "upper"),),
    )

    def warmup(self, params: Params) -> int:
        """The Wilder averages' memory of their seeds (from bar 1)."""
        return ind.wilder_warmup(int(params["window"]))  # type: ignore[arg-type]

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        r = ind.rsi(close_of(bars), int(params["window"]))  # type: ignore[arg-type]
        with np.errstate(invalid="ignore"):
            entries = r < float(params["lower"])  # type: ignore[arg-type]
            exits = r > float(params["upper"])  # type: ignore[arg-type]
        return with_exits(Signals.from_arrays(entries, exits), params)

    def compiled(self, params: Params) -> Compiled:
        return Compiled(
            OSC,
            ((lines.RSI, int(params["window"])),),  # type: ignore[arg-type]
            args=(float(params["lower"]), float(params["upper"])),  # type: ignore[arg-type]
            stop_loss=float(params["stop_loss"]) or None,  # type: ignore[arg-type]
            take_profit=float(params["take_profit"]) or None,  # type: ignore[arg-type]
        )
