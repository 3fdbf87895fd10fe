"""The one seeded bar factory of the tests: canonical kline frames from a few named shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from trading_pipeline.backtest.synthetic import random_walk_bars
from trading_pipeline.market.schema import INTERVAL_MS, conform
from trading_pipeline.regimes.synthetic import synthetic_bars

START = datetime(2020, 1, 1, tzinfo=UTC)
START_2021 = datetime(2021, 1, 1, tzinfo=UTC)  # where the discovery and selector tests' walks start
TRENDS = ("walk", "walk_traded", "regimes")


def make_bars(
    n: int,
    *,
    interval: str = "1h",
    start: datetime = START,
    seed: int = 42,
    trend: str = "walk",
    price: float = 100.0,
    vol: float = 0.01,
    drift: float = 0.0,
    decimals: int | None = None,
) -> pl.DataFrame:
    """``n`` canonical klines of ``interval`` from ``start``, the same for the same arguments.

    ``trend``: ``walk`` a geometric random walk (the package's ``random_walk_bars``, the bars
    the lookahead CLI checks), ``walk_traded`` a random walk with lognormal volume, quote volume
    and trade counts (no strategy has an edge on it), ``regimes`` a bull, a bear and a sideways
    third (the package's scripted ``synthetic_bars``; ``vol``/``drift`` do not apply).
    ``decimals`` rounds prices and volume as an exchange quotes them (8 for Binance spot).
    """
    if trend == "walk":
        df = random_walk_bars(
            n, seed=seed, interval=interval, start=start, price=price, vol=vol, drift=drift
        )
    elif trend == "walk_traded":
        df = _traded_walk(n, seed=seed, interval=interval, start=start, price=price, vol=vol,
                          drift=drift)  # fmt: skip
    elif trend == "regimes":
        third = n // 3
        script = [("bull", third), ("bear", third), ("sideways", n - 2 * third)]
        df = synthetic_bars(script, seed=seed, interval=interval, start=start, price=price)
    else:
        raise ValueError(f"unknown trend {trend!r}: use one of {', '.join(TRENDS)}")
    if decimals is None:
        return df
    return df.with_columns(
        pl.Series(c, [float(f"{v:.{decimals}f}") for v in df[c].to_list()])
        for c in ("open", "high", "low", "close", "volume")
    )


def _traded_walk(
    n: int, *, seed: int, interval: str, start: datetime, price: float, vol: float, drift: float
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    r = drift + vol * rng.standard_normal(n)
    close = price * np.exp(np.cumsum(r))
    open_ = np.concatenate([[price], close[:-1]])
    wiggle = np.abs(rng.standard_normal((2, n))) * vol * 0.5
    high = np.maximum(open_, close) * (1 + wiggle[0])
    low = np.minimum(open_, close) * (1 - wiggle[1])
    step = timedelta(milliseconds=INTERVAL_MS[interval])
    times = [start + i * step for i in range(n)]
    volume = rng.lognormal(3.0, 0.4, n)
    return conform(
        pl.DataFrame(
            {
                "open_time": times,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume,
                "close_time": [t + step - timedelta(microseconds=1) for t in times],
                "quote_volume": volume * close,
                "trades": rng.integers(10, 100, n),
            }
        )
    )
