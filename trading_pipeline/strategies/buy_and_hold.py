"""Buy and hold, the benchmark: an entry signal on every bar (repeated entries are ignored
while in a position), so any evaluated range starts invested after its first bar."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl

from trading_pipeline.strategies.base import Params, SearchSpace, Signals, StrategyFamily
from trading_pipeline.strategies.compiled import ALWAYS, Compiled


class BuyAndHold(StrategyFamily):
    """Always long."""

    name: ClassVar[str] = "buy_and_hold"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "the benchmark: always long"
    space: ClassVar[SearchSpace] = SearchSpace(params=())

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        n = bars.height
        return Signals.from_arrays(np.ones(n, dtype=bool), np.zeros(n, dtype=bool))

    def compiled(self, params: Params) -> Compiled:
        return Compiled(ALWAYS, ())
