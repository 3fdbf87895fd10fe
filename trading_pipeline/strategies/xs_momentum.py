"""Cross-sectional momentum rotation: hold the top ``top_k`` coins of the universe by trailing
return over ``lookback`` bars, equal weight ``1 / top_k`` each, rebalanced every ``rebalance``
bars (epoch-aligned). With ``cash_filter`` a coin whose trailing return is not positive is not
held (its share stays in cash: absolute momentum on top of relative)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from trading_pipeline.strategies.base import Param, Params, SearchSpace
from trading_pipeline.strategies.portfolio import PortfolioFamily, trailing_return
from trading_pipeline.strategies.universe import Universe


def top_k_weights(score: np.ndarray, k: int, *, positive_only: bool) -> np.ndarray:
    """``1 / k`` for each of the ``k`` best-scoring coins per bar (NaN scores never chosen;
    ties go to the earlier coin), 0 elsewhere; with ``positive_only`` only scores > 0."""
    n, m = score.shape
    k = max(1, min(int(k), m))
    s = np.where(np.isnan(score), -np.inf, score)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    rows = np.arange(n)[:, None]
    w = np.zeros((n, m))
    w[rows, order] = 1.0 / k
    ok = np.isfinite(s) & ((s > 0) if positive_only else True)
    return np.where(ok, w, 0.0)


class CrossSectionalMomentum(PortfolioFamily):
    """Hold the top k coins by trailing return, equal weight, rebalanced every n bars."""

    name: ClassVar[str] = "xs_momentum"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "top-k coins by trailing return, equal weight, every n bars"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(
            Param("lookback", "int", 24 * 30, low=24, high=24 * 180, step=24, help="bars"),
            Param(
                "top_k",
                "int",
                1,
                low=1,
                high=5,
                step=1,
                help="coins held (capped at the universe size)",
            ),
            Param("rebalance", "int", 24 * 7, low=24, high=24 * 30, step=24, help="bars"),
            Param(
                "cash_filter",
                "choice",
                True,
                choices=(True, False),
                help="cash instead of a coin whose trailing return is <= 0",
            ),
        )
    )

    def warmup(self, params: Params) -> int:
        return int(params["lookback"]) + int(params["rebalance"])  # type: ignore[arg-type]

    def targets(self, u: Universe, params: Params) -> tuple[np.ndarray, np.ndarray]:
        ret = trailing_return(u.close, int(params["lookback"]))  # type: ignore[arg-type]
        w = top_k_weights(ret, int(params["top_k"]), positive_only=bool(params["cash_filter"]))  # type: ignore[arg-type]
        return w, u.schedule(int(params["rebalance"]))  # type: ignore[arg-type]
