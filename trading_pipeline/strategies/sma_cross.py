"""SMA cross, the core bot's family: long when the fast mean crosses above the slow one.

Optional, off by default: a trend filter (enter only above a long SMA), a volume filter (enter
only when volume exceeds ``vol_mult`` × its mean) and an ATR stop (``atr_mult`` × ATR below the
entry). Grids run fused with or without them (see :meth:`SmaCross.compiled`).
"""

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
from trading_pipeline.strategies.compiled import CROSS, NO_LINE, Compiled


def close_of(bars: pl.DataFrame) -> np.ndarray:
    """The close column as contiguous float64."""
    return np.ascontiguousarray(bars["close"].to_numpy(), dtype=np.float64)


def column(bars: pl.DataFrame, name: str) -> np.ndarray:
    """Any numeric column as contiguous float64 (nulls become 0)."""
    return np.ascontiguousarray(bars[name].fill_null(0.0).to_numpy(), dtype=np.float64)


class SmaCross(StrategyFamily):
    """Fast/slow simple-moving-average crossover, long only."""

    name: ClassVar[str] = "sma_cross"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "fast SMA crosses slow SMA; optional trend, volume, ATR stop"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param("fast", "int", 10, low=2, high=200, step=1, help="fast SMA window"),
            Param("slow", "int", 50, low=3, high=400, step=1, help="slow SMA window"),
            Param(
                "trend",
                "int",
                0,
                low=20,
                high=500,
                step=10,
                off=0,
                tune=False,
                help="enter only when close > SMA(trend); 0 = off",
            ),
            Param(
                "vol_window",
                "int",
                0,
                low=5,
                high=200,
                step=5,
                off=0,
                tune=False,
                help="volume filter window; 0 = off",
            ),
            Param(
                "vol_mult",
                "float",
                1.0,
                low=0.1,
                high=10.0,
                step=0.1,
                tune=False,
                help="enter only when volume > vol_mult × mean volume",
            ),
            Param("atr_window", "int", 14, low=2, high=100, step=1, tune=False, help="ATR window"),
            Param(
                "atr_mult",
                "float",
                0.0,
                low=0.5,
                high=10.0,
                step=0.5,
                off=0.0,
                tune=False,
                help="stop atr_mult × ATR below the entry; 0 = off",
            ),
        ),
        constraints=(LessThan("fast", "slow"),),
    )

    def warmup(self, params: Params) -> int:
        return max(
            int(params["slow"]),
            int(params["trend"]),
            int(params["vol_window"]),  # type: ignore[arg-type]
            ind.wilder_warmup(int(params["atr_window"])) if params["atr_mult"] else 0,  # type: ignore[arg-type]
        )  # type: ignore[arg-type]

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        close = close_of(bars)
        fast = ind.sma(close, int(params["fast"]))  # type: ignore[arg-type]
        slow = ind.sma(close, int(params["slow"]))  # type: ignore[arg-type]
        entries = ind.cross_above(fast, slow)
        exits = ind.cross_below(fast, slow)
        if int(params["trend"]):  # type: ignore[arg-type]
            with np.errstate(invalid="ignore"):
                entries &= close > ind.sma(close, int(params["trend"]))  # type: ignore[arg-type]
        if int(params["vol_window"]):  # type: ignore[arg-type]
            vol = column(bars, "volume")
            with np.errstate(invalid="ignore"):
                entries &= vol > float(params["vol_mult"]) * ind.sma(vol, int(params["vol_window"]))  # type: ignore[arg-type]
        stop = None
        if float(params["atr_mult"]) > 0:  # type: ignore[arg-type]
            a = ind.atr(column(bars, "high"), column(bars, "low"), close, int(params["atr_window"]))  # type: ignore[arg-type]
            stop = float(params["atr_mult"]) * a  # type: ignore[arg-type]
        return Signals.from_arrays(entries, exits, stop_distance=stop)

    def compiled(self, params: Params) -> Compiled:
        trend, vw = int(params["trend"]), int(params["vol_window"])  # type: ignore[arg-type]
        atr_mult = float(params["atr_mult"])  # type: ignore[arg-type]
        return Compiled(
            CROSS,
            (
                (lines.SMA, int(params["fast"])),  # type: ignore[arg-type]
                (lines.SMA, int(params["slow"])),  # type: ignore[arg-type]
                (lines.SMA, trend) if trend else NO_LINE,
                (lines.VOL_SMA, vw) if vw else NO_LINE,
                (lines.ATR, int(params["atr_window"])) if atr_mult > 0 else NO_LINE,  # type: ignore[arg-type]
            ),
            args=(float(params["vol_mult"]), atr_mult),  # type: ignore[arg-type]
            stop_distance=atr_mult > 0,
        )
