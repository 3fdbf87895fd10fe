"""A universe of coins as ONE frame: the series a portfolio family is tuned, audited and judged on.

The frame holds ``open_time`` and, per coin ``S``, the columns ``S__open``, ``S__high``,
``S__low``, ``S__close`` and ``S__volume``, the coins' bars inner-joined on open time (a bar is
in the universe when every coin has it). Because it is one frame, the walk-forward tuner, the
lookahead audit (which truncates and shocks it like any bars) and the out-of-sample results
treat the universe exactly as they treat a single series. Its series key names the coins and
the interval, e.g. ``universe-BTC+ETH+BNB-1h``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import UTC_US

SEP = "__"
PRICE_COLUMNS = ("open", "high", "low", "close")
YEAR_MS = 365.0 * 86_400_000  # as market.schema.bars_per_year counts a year


def universe_frame(series: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """``open_time`` plus ``<coin>__<open|high|low|close|volume>`` per coin, inner-joined."""
    if len(series) < 2:
        raise UserInputError(f"a universe needs at least two coins, got {len(series)}")
    out: pl.DataFrame | None = None
    for key, df in series.items():
        if SEP in key or not key:
            raise UserInputError(f"coin name {key!r} must be non-empty without {SEP!r}")
        missing = [c for c in ("open_time", *PRICE_COLUMNS) if c not in df.columns]
        if missing:
            raise UserInputError(f"series {key} lacks column(s) {', '.join(missing)}")
        if df["open_time"].is_duplicated().any():
            raise UserInputError(f"series {key} has duplicate open times")
        vol = pl.col("volume") if "volume" in df.columns else pl.lit(0.0)
        part = df.select(
            pl.col("open_time").cast(UTC_US),
            *[pl.col(c).cast(pl.Float64).alias(f"{key}{SEP}{c}") for c in PRICE_COLUMNS],
            vol.cast(pl.Float64).fill_null(0.0).alias(f"{key}{SEP}volume"),
        )
        out = part if out is None else out.join(part, on="open_time", how="inner")
    assert out is not None
    out = out.sort("open_time")
    if out.height == 0:
        raise UserInputError("the universe's coins have no open time in common")
    bad = out.select(
        pl.any_horizontal(
            (pl.col(c).is_null() | pl.col(c).is_nan() | (pl.col(c) <= 0))
            for c in out.columns
            if c.endswith(tuple(f"{SEP}{p}" for p in PRICE_COLUMNS))
        )
    ).to_series()
    if bad.any():
        raise UserInputError(
            f"NaN, missing or non-positive price in universe bar {bad.arg_true()[0]}"
        )
    return out


def universe_key(coins: list[str] | tuple[str, ...], interval: str) -> str:
    """The series key of a universe: ``universe-BTC+ETH+BNB-1h``."""
    return f"universe-{'+'.join(coins)}-{interval}"


def coins_of(frame: pl.DataFrame) -> list[str]:
    """The coins of a universe frame, in column order."""
    return [c[: -len(f"{SEP}close")] for c in frame.columns if c.endswith(f"{SEP}close")]


def is_universe(frame: pl.DataFrame) -> bool:
    return bool(coins_of(frame)) and "close" not in frame.columns


def require_fitting_frame(family: object, frame: pl.DataFrame) -> None:
    """One clear line when a portfolio family meets one series, before any audit or study."""
    name = getattr(family, "name", "?")
    portfolio = bool(getattr(family, "portfolio", False))
    if portfolio and not is_universe(frame):
        raise UserInputError(
            f"{name} is a portfolio family: it runs on a universe of coins "
            "(`make report-portfolio`, discovery.portfolio_study), not on one series"
        )


@dataclass(frozen=True)
class Universe:
    """The arrays of a universe frame: open and close ``(bars, coins)``, open times (ms)."""

    coins: tuple[str, ...]
    open: np.ndarray
    close: np.ndarray
    times_ms: np.ndarray

    @classmethod
    def of(cls, frame: pl.DataFrame) -> Universe:
        coins = coins_of(frame)
        if not coins:
            raise UserInputError("not a universe frame: no <coin>__close column")
        o = np.column_stack([frame[f"{c}{SEP}open"].to_numpy() for c in coins]).astype(np.float64)
        c_ = np.column_stack([frame[f"{c}{SEP}close"].to_numpy() for c in coins]).astype(np.float64)
        ms = frame["open_time"].cast(UTC_US).dt.epoch("ms").to_numpy().astype(np.int64)
        return cls(tuple(coins), np.ascontiguousarray(o), np.ascontiguousarray(c_), ms)

    @property
    def n(self) -> int:
        return int(self.close.shape[0])

    @property
    def bar_ms(self) -> int:
        """The bar length: the smallest step between open times (gaps are longer steps)."""
        steps = np.diff(self.times_ms)
        steps = steps[steps > 0]
        return int(steps.min()) if steps.size else 3_600_000

    @property
    def bars_per_year(self) -> float:
        return YEAR_MS / self.bar_ms

    def schedule(self, every: int) -> np.ndarray:
        """Rebalancing bars, aligned on the epoch (bar number since 1970 divisible by ``every``):
        the same bars whatever the first bar of the data, so truncating or starting the history
        later never moves them."""
        number = self.times_ms // self.bar_ms
        return np.asarray(number % max(int(every), 1) == 0)
