"""Seeded synthetic candles with known regimes, for tests and benchmarks without real data.

The close follows a geometric random walk whose drift and volatility switch between scripted
segments (``bull``, ``bear``, ``sideways``, each optionally ``_highvol``), so a labeller can be
checked against the truth; OHLC and volume are drawn around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from trading_pipeline.market.schema import INTERVAL_MS, conform

# Per-bar drift and volatility of hourly log returns for each scripted regime.
_DRIFT = {"bull": 0.0006, "bear": -0.0006, "sideways": 0.0}
_VOL = {"normal": 0.006, "highvol": 0.018}

DEFAULT_SCRIPT: tuple[tuple[str, int], ...] = (
    ("sideways", 2000),
    ("bull", 3000),
    ("bull_highvol", 1000),
    ("bear", 3000),
    ("bear_highvol", 800),
    ("sideways", 2500),
    ("bull", 2500),
)


def truth(script: Sequence[tuple[str, int]]) -> list[str]:
    """The scripted regime of every bar."""
    return [name for name, n in script for _ in range(n)]


def synthetic_bars(
    script: Sequence[tuple[str, int]] = DEFAULT_SCRIPT,
    *,
    seed: int = 7,
    interval: str = "1h",
    start: datetime = datetime(2020, 1, 1, tzinfo=UTC),
    price: float = 10_000.0,
) -> pl.DataFrame:
    """Canonical kline frame following ``script`` (a list of ``(regime, bars)``)."""
    rng = np.random.default_rng(seed)
    labels = truth(script)
    n = len(labels)
    drift = np.array([_DRIFT[lab.split("_")[0]] for lab in labels])
    vol = np.array([_VOL["highvol" if lab.endswith("_highvol") else "normal"] for lab in labels])
    r = drift + vol * rng.standard_normal(n)
    close = price * np.exp(np.cumsum(r))
    open_ = np.empty(n)
    open_[0] = price
    open_[1:] = close[:-1] * (1 + 1e-4 * rng.standard_normal(n - 1))
    wiggle = np.abs(rng.standard_normal((2, n))) * vol * 0.6
    high = np.maximum(open_, close) * (1 + wiggle[0])
    low = np.minimum(open_, close) * (1 - wiggle[1])
    volume = rng.lognormal(3.0, 0.5, n) * (1 + 20 * np.abs(r))
    step = timedelta(milliseconds=INTERVAL_MS[interval])
    times = [start + i * step for i in range(n)]
    df = pl.DataFrame(
        {
            "open_time": times,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "close_time": [t + step - timedelta(microseconds=1) for t in times],
            "quote_volume": volume * close,
            "trades": rng.integers(100, 1000, n),
        }
    )
    return conform(df)
