"""Seeded synthetic bars (a geometric random walk) for tests, benchmarks and the lookahead CLI."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from trading_pipeline.market.schema import INTERVAL_MS, conform


def random_walk_bars(
    n: int,
    *,
    seed: int = 42,
    interval: str = "1h",
    start: datetime = datetime(2020, 1, 1, tzinfo=UTC),
    price: float = 100.0,
    vol: float = 0.01,
    drift: float = 0.0,
) -> pl.DataFrame:
    """``n`` canonical klines whose closes follow a seeded geometric random walk."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(drift, vol, n)))
    open_ = np.concatenate([[price], close[:-1]])
    spread = np.abs(rng.normal(0.0, vol / 2, n))
    high = np.maximum(open_, close) * (1.0 + spread)
    low = np.minimum(open_, close) * (1.0 - spread)
    ms = INTERVAL_MS[interval]
    t0 = int(start.timestamp() * 1000)
    times = t0 + np.arange(n, dtype=np.int64) * ms
    df = pl.DataFrame(
        {
            "open_time": pl.from_epoch(pl.Series(times), "ms"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(1.0, 100.0, n),
            "close_time": pl.from_epoch(pl.Series(times + ms - 1), "ms"),
        }
    )
    return conform(df)
