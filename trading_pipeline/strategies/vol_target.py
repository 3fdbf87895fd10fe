"""Volatility targeting: scale exposure so the position's annualised volatility (estimated
from the trailing ``vol_window`` bars' log returns) is ``target_vol``, capped at
``max_exposure`` (1: no leverage). ``mode = each`` sizes each coin on its own (``1 / coins`` of
equity at most, scaled by ``target_vol / vol``); ``mode = basket`` scales the equal-weight
basket as a whole by its own realised volatility. Rebalanced every ``rebalance`` bars."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from trading_pipeline.strategies.base import Param, Params, SearchSpace
from trading_pipeline.strategies.portfolio import PortfolioFamily, realised_vol
from trading_pipeline.strategies.universe import Universe


def scale_to(target: float, vol: np.ndarray, cap: float) -> np.ndarray:
    """``min(cap, target / vol)``; 0 where the volatility is unknown or zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(np.isfinite(vol) & (vol > 0), target / vol, 0.0)
    return np.minimum(s, cap)


class VolTarget(PortfolioFamily):
    """Exposure scaled to a target annualised volatility, no leverage."""

    name: ClassVar[str] = "vol_target"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "exposure = target vol / trailing realised vol, capped at 1"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param("vol_window", "int", 24 * 30, low=24, high=24 * 90, step=24, help="bars"),
            Param(
                "target_vol",
                "float",
                0.4,
                low=0.1,
                high=1.5,
                step=0.05,
                help="annualised volatility aimed at",
            ),
            Param("rebalance", "int", 24, low=24, high=24 * 14, step=24, help="bars"),
            Param("mode", "choice", "each", choices=("each", "basket")),
            Param(
                "max_exposure",
                "float",
                1.0,
                low=0.1,
                high=1.0,
                step=0.1,
                tune=False,
                help="cap on the invested fraction (1 = no leverage)",
            ),
        )
    )

    def warmup(self, params: Params) -> int:
        return int(params["vol_window"]) + int(params["rebalance"]) + 1  # type: ignore[arg-type]

    def targets(self, u: Universe, params: Params) -> tuple[np.ndarray, np.ndarray]:
        window = int(params["vol_window"])  # type: ignore[arg-type]
        target = float(params["target_vol"])  # type: ignore[arg-type]
        cap = float(params["max_exposure"])  # type: ignore[arg-type]
        m = u.close.shape[1]
        if params["mode"] == "each":
            vol = realised_vol(u.close, window, u.bars_per_year)
            w = scale_to(target, vol, cap) / m
        else:
            r = np.vstack([np.ones((1, m)), u.close[1:] / u.close[:-1]])
            basket = np.cumprod(r.mean(axis=1))[:, None]  # equal weight, rebalanced each bar
            vol = realised_vol(basket, window, u.bars_per_year)
            w = np.repeat(scale_to(target, vol, cap) / m, m, axis=1)
        return w, u.schedule(int(params["rebalance"]))  # type: ignore[arg-type]
