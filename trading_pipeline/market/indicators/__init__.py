"""The indicator library: 200+ distinct indicator outputs as polars columns.

TA-Lib (the field's reference implementation) computes most of them in C; ``native`` adds
the ones it lacks (realised-volatility estimators, drawdown, Klinger, KST, Connors RSI …).
``registry`` lists every output with its family and parameters.

Every column at bar ``t`` uses bars ``<= t`` only. The first ``warmup_bars`` rows of a frame
are not trustworthy (null or still converging): compute a period with that many bars before it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from trading_pipeline.market.indicators import native, talib_backend
from trading_pipeline.market.indicators.registry import (
    REGISTRY,
    Indicator,
    count_by_family,
    feature_names,
    select,
    warmup_bars,
)

__all__ = [
    "REGISTRY",
    "Indicator",
    "compute_arrays",
    "compute_features",
    "count_by_family",
    "feature_names",
    "warmup_bars",
]

_INPUTS = ("open", "high", "low", "close", "volume")


def ohlcv_arrays(bars: pl.DataFrame) -> dict[str, np.ndarray]:
    """Contiguous float64 arrays of the OHLCV columns (null volume becomes 0)."""
    missing = [c for c in _INPUTS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack columns: {', '.join(missing)}")
    out = {}
    for c in _INPUTS:
        s = bars.get_column(c).cast(pl.Float64)
        if c == "volume":
            s = s.fill_null(0.0)
        out[c] = np.ascontiguousarray(s.to_numpy(), dtype=np.float64)
    return out


def compute_arrays(
    arrays: dict[str, np.ndarray], indicators: list[str] | None = None
) -> dict[str, np.ndarray]:
    """Every selected output as a float64 array (NaN where undefined), keyed by column name."""
    result: dict[str, np.ndarray] = {}
    for ind in select(indicators):
        backend = talib_backend if ind.backend == "talib" else native
        result.update(backend.compute(ind, arrays))
    return result


def compute_features(bars: pl.DataFrame, *, indicators: list[str] | None = None) -> pl.DataFrame:
    """``open_time`` plus one Float64 column per indicator output (null where undefined).

    ``bars`` must be one series sorted by ``open_time``; ``indicators`` names registry entries
    (all when None).
    """
    if bars.height and not bars.get_column("open_time").is_sorted():
        raise ValueError("bars must be sorted by open_time")
    values = compute_arrays(ohlcv_arrays(bars), indicators)
    cols = [pl.Series(name, v, dtype=pl.Float64, nan_to_null=True) for name, v in values.items()]
    return pl.DataFrame([bars.get_column("open_time"), *cols])
