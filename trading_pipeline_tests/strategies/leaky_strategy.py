"""A deliberately leaky strategy: it peeks at the next bar's close. ``lookahead`` must catch it."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl

from trading_pipeline.strategies.base import Param, Params, SearchSpace, Signals, StrategyFamily


class PeekNextClose(StrategyFamily):
    """Buys when the NEXT close is higher — impossible to trade, perfect in a naive backtest."""

    name: ClassVar[str] = "peek_next_close"
    version: ClassVar[int] = 1
    space: ClassVar[SearchSpace] = SearchSpace(params=(Param("lag", "int", 1, low=1, high=5),))

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        close = bars["close"].to_numpy()
        ahead = bars["close"].shift(-int(params["lag"])).to_numpy()  # type: ignore[arg-type]
        with np.errstate(invalid="ignore"):
            up = ahead > close
        return Signals.from_arrays(up, ~up & ~np.isnan(ahead))
