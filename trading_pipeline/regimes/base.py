"""The labeller interface, regime names, and the causal minimum-duration smoothing.

A label at row ``t`` describes the market as of the *close* of bar ``t`` and is computed from
bars ``<= t`` only, so a decision taken at the open of bar ``t + 1`` may use it.

Regime names are a trend word crossed with a volatility flag: ``bull``, ``bear``,
``sideways``, each optionally suffixed ``_highvol`` (``bull_highvol`` …), plus ``unknown`` while
the labeller's history is too short. ``label`` returns ``open_time, regime, trend, vol``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numba
import numpy as np
import polars as pl

TRENDS: tuple[str, ...] = ("bull", "bear", "sideways")
UNKNOWN = "unknown"
REGIMES: tuple[str, ...] = (
    *TRENDS,
    *(f"{t}_highvol" for t in TRENDS),
    UNKNOWN,
)
CODES: dict[str, int] = {name: i for i, name in enumerate(REGIMES)}
UNKNOWN_CODE = CODES[UNKNOWN]


@runtime_checkable
class RegimeLabeller(Protocol):
    """Labels every bar of one series with a regime, causally."""

    @property
    def name(self) -> str:
        """The labeller's registry name."""
        ...

    def label(self, bars: pl.DataFrame) -> pl.DataFrame:
        """``open_time, regime, trend, vol`` for every bar of ``bars`` (sorted by open_time)."""
        ...


def bars_per_day(bars: pl.DataFrame) -> float:
    """Bars per UTC day, from the median spacing of ``open_time`` (1 for daily bars)."""
    if bars.height < 2:
        return 1.0
    step = bars.get_column("open_time").diff().drop_nulls().median()
    seconds = step.total_seconds() if step is not None else 86_400.0  # type: ignore[union-attr]
    return max(86_400.0 / seconds, 1e-9) if seconds > 0 else 1.0


@numba.njit(cache=True)
def _confirm(raw: np.ndarray, n: int, unknown: int) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty_like(raw)
    if raw.size == 0:
        return out
    state = raw[0]
    candidate = -1
    count = 0
    for i in range(raw.size):
        r = raw[i]
        if r == state:
            candidate = -1
            count = 0
        elif state == unknown:
            state = r  # leaving the warm-up needs no confirmation
            candidate = -1
            count = 0
        elif r == candidate:
            count += 1
        else:
            candidate = r
            count = 1
        if candidate >= 0 and count >= n:
            state = candidate
            candidate = -1
            count = 0
        out[i] = state
    return out


def confirm(raw: np.ndarray, min_duration: int) -> np.ndarray:
    """Causal smoothing of integer regime codes: a new regime replaces the current one only
    once it has been the raw label for ``min_duration`` consecutive bars (the confirmation
    delay is the price of no flicker). Leaving ``unknown`` is immediate.
    """
    codes = np.ascontiguousarray(raw, dtype=np.int64)
    return _confirm(codes, max(int(min_duration), 1), UNKNOWN_CODE)


def encode(trend: np.ndarray, highvol: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Codes of ``trend`` index (0 bull, 1 bear, 2 sideways) crossed with the high-vol flag."""
    codes = trend.astype(np.int64) + np.where(highvol, len(TRENDS), 0)
    return np.where(known, codes, UNKNOWN_CODE)


def labels_frame(open_time: pl.Series, codes: np.ndarray) -> pl.DataFrame:
    """``open_time, regime, trend, vol`` from regime codes."""
    names = np.asarray(REGIMES, dtype=object)[codes]
    regime = pl.Series("regime", names.tolist(), dtype=pl.String)
    df = pl.DataFrame([open_time, regime])
    return df.with_columns(
        pl.col("regime").str.replace("_highvol", "").alias("trend"),
        pl.when(pl.col("regime") == UNKNOWN)
        .then(pl.lit(UNKNOWN))
        .when(pl.col("regime").str.ends_with("_highvol"))
        .then(pl.lit("high"))
        .otherwise(pl.lit("normal"))
        .alias("vol"),
    )


def daily_threshold(
    bars_time: pl.Series, values: pl.Series, *, quantile: float, days: int, min_days: int
) -> np.ndarray:
    """Per bar, the ``quantile`` of the daily-sampled ``values`` over the previous ``days`` UTC
    days (the bar's own day excluded): a percentile computed on the past only.
    """
    df = pl.DataFrame({"open_time": bars_time, "v": values})
    daily = (
        df.group_by_dynamic("open_time", every="1d")
        .agg(pl.col("v").drop_nans().last())
        .with_columns(
            pl.col("v")
            .rolling_quantile(quantile, window_size=days, min_samples=min_days)
            .shift(1)
            .alias("thr")
        )
        .select(pl.col("open_time").alias("day"), "thr")
    )
    joined = df.select("open_time").join_asof(
        daily, left_on="open_time", right_on="day", strategy="backward"
    )
    return joined.get_column("thr").fill_null(np.nan).to_numpy()
