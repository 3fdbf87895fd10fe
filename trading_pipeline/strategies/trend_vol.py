"""Trend filter with volatility-scaled exposure: per coin, long while its close is above its
trailing ``trend``-bar SMA (``rule = sma``) or its ``trend``-bar return is positive
(``rule = return``); the coins in a trend get inverse-volatility weights normalised over the
whole universe (all coins trending: weights sum to 1; fewer: the rest is cash), each capped at
``max_weight``. Rebalanced every ``rebalance`` bars and whenever a coin's trend flips."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from trading_pipeline.strategies import indicators as ind
from trading_pipeline.strategies.base import Param, Params, SearchSpace
from trading_pipeline.strategies.portfolio import PortfolioFamily, realised_vol, trailing_return
from trading_pipeline.strategies.universe import Universe


class TrendVol(PortfolioFamily):
    """Long the coins in an uptrend, inverse-volatility weights, capped."""

    name: ClassVar[str] = "trend_vol"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "per coin: long above its SMA, weight ∝ 1/vol, capped"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param("trend", "int", 24 * 50, low=24, high=24 * 200, step=24, help="bars"),
            Param("rule", "choice", "sma", choices=("sma", "return")),
            Param("vol_window", "int", 24 * 30, low=24, high=24 * 90, step=24, help="bars"),
            Param("rebalance", "int", 24 * 7, low=24, high=24 * 30, step=24, help="bars"),
            Param(
                "max_weight",
                "float",
                1.0,
                low=0.2,
                high=1.0,
                step=0.1,
                help="cap on any one coin's weight",
            ),
        )
    )

    def warmup(self, params: Params) -> int:
        longest = max(int(params["trend"]), int(params["vol_window"]) + 1)  # type: ignore[arg-type]
        return longest + int(params["rebalance"])  # type: ignore[arg-type]

    def targets(self, u: Universe, params: Params) -> tuple[np.ndarray, np.ndarray]:
        trend = int(params["trend"])  # type: ignore[arg-type]
        if params["rule"] == "sma":
            avg = np.column_stack([ind.sma(u.close[:, j], trend) for j in range(u.close.shape[1])])
            with np.errstate(invalid="ignore"):
                on = np.isfinite(avg) & (u.close > avg)
        else:
            r = trailing_return(u.close, trend)
            with np.errstate(invalid="ignore"):
                on = np.isfinite(r) & (r > 0)
        vol = realised_vol(u.close, int(params["vol_window"]), u.bars_per_year)  # type: ignore[arg-type]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(np.isfinite(vol) & (vol > 0), 1.0 / vol, np.nan)
        known = np.isfinite(inv).all(axis=1, keepdims=True)
        total = np.nansum(inv, axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(known & on, np.nan_to_num(inv) / np.where(total > 0, total, 1.0), 0.0)
        w = np.minimum(w, float(params["max_weight"]))  # type: ignore[arg-type]
        flipped = np.vstack([np.zeros((1, on.shape[1]), dtype=bool), on[1:] != on[:-1]])
        decide = u.schedule(int(params["rebalance"])) | flipped.any(axis=1)  # type: ignore[arg-type]
        return w, decide
