"""Align two venues' bars on UTC open time and measure the basis (spread) between them.

Cross-venue work (the basis asset, arbitrage, hedging) needs both venues' bars for the same hour.
Venues have their own outages, so a bar is used only when both venues have it: the join is an
inner join, and everything it drops is counted (never silently filled or forward-filled, which
would invent a spread at a stale price). Duplicate open times are refused rather than deduplicated
because a duplicated bar means the input is broken, and picking one copy would hide that.

The basis compares prices as quoted. When the two venues quote in different currencies (Binance
BTC/USDT against Coinbase BTC-USD) the basis *includes* the USDT/USD exchange rate; nothing here
converts or equates the two quote currencies.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import polars as pl

from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import INTERVAL_MS, OHLCV, UTC_US

SIDES = ("a", "b")


def _prepare(df: pl.DataFrame, side: str, interval: str) -> tuple[pl.DataFrame, int]:
    """One side's OHLCV with prefixed columns, and how many of its bars are off the interval grid."""
    missing = [c for c in ("open_time", *OHLCV) if c not in df.columns]
    if missing:
        raise UserInputError(f"venue {side} bars lack column(s) {', '.join(missing)}")
    dtype = df.schema["open_time"]
    if not isinstance(dtype, pl.Datetime):
        raise UserInputError(f"venue {side} open_time must be a datetime, got {dtype}")
    frame = df.select("open_time", *OHLCV)
    if dtype.time_zone is None:  # naive times are taken as UTC (freqtrade and Vision are UTC)
        frame = frame.with_columns(pl.col("open_time").dt.replace_time_zone("UTC"))
    frame = frame.with_columns(
        pl.col("open_time").dt.convert_time_zone("UTC").cast(UTC_US),
        *[pl.col(c).cast(pl.Float64) for c in OHLCV],
    )
    if frame["open_time"].null_count():
        raise UserInputError(f"venue {side} has bars without an open_time")
    dup = frame.filter(pl.col("open_time").is_duplicated())
    if dup.height:
        first = str(dup["open_time"].min())
        raise UserInputError(
            f"venue {side} has {dup['open_time'].n_unique()} duplicate open time(s), "
            f"first {first}; deduplicate the input first"
        )
    step_us = INTERVAL_MS[interval] * 1000
    if interval == "1mo":
        on_grid = pl.lit(True)
    else:
        on_grid = pl.col("open_time").dt.epoch("us") % step_us == 0
    off = int(frame.select((~on_grid).sum()).item())
    frame = frame.filter(on_grid)
    return frame.rename({c: f"{side}_{c}" for c in OHLCV}), off


def align_venues(a: pl.DataFrame, b: pl.DataFrame, *, interval: str) -> pl.DataFrame:
    """Bars of venues ``a`` and ``b`` joined on UTC open time, sorted.

    Columns: ``open_time, a_open, a_high, a_low, a_close, a_volume, b_open, ..., b_volume``.
    Bars present on one side only, and bars whose open time is off the ``interval`` grid, are
    excluded (:func:`alignment_report` counts them). Duplicate open times raise
    :class:`UserInputError`.
    """
    if interval not in INTERVAL_MS:
        raise UserInputError(f"unknown interval {interval!r}")
    fa, _ = _prepare(a, "a", interval)
    fb, _ = _prepare(b, "b", interval)
    return fa.join(fb, on="open_time", how="inner").sort("open_time")


def basis(aligned: pl.DataFrame) -> pl.DataFrame:
    """Per bar: ``basis_bps = (b_close / a_close - 1) * 1e4`` and ``log_basis_bps = ln(b/a) * 1e4``.

    Positive means venue ``b`` is dearer than venue ``a`` at the close.
    """
    missing = [c for c in ("open_time", "a_close", "b_close") if c not in aligned.columns]
    if missing:
        raise UserInputError(f"aligned bars lack column(s) {', '.join(missing)}")
    ratio = pl.col("b_close") / pl.col("a_close")
    return aligned.select(
        "open_time",
        ((ratio - 1.0) * 1e4).alias("basis_bps"),
        (ratio.log() * 1e4).alias("log_basis_bps"),
    )


@dataclass(frozen=True)
class AlignmentReport:
    """What the alignment kept and dropped, and how wide the basis was on what it kept."""

    interval: str
    a_bars: int
    b_bars: int
    overlap: int  # bars present on both sides (rows of the aligned frame)
    a_only: int  # a's bars with no b bar at the same open time (excluded)
    b_only: int
    a_only_in_span: int  # of a_only, those inside the common span (b's gaps, not just edges)
    b_only_in_span: int
    a_off_grid: int  # bars not on the interval grid (excluded)
    b_off_grid: int
    first: datetime | None
    last: datetime | None
    median_abs_basis_bps: float
    p99_abs_basis_bps: float
    max_abs_basis_bps: float
    mean_basis_bps: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["first"] = self.first.isoformat() if self.first else None
        d["last"] = self.last.isoformat() if self.last else None
        return d


def alignment_report(
    a: pl.DataFrame,
    b: pl.DataFrame,
    *,
    interval: str,
    aligned: pl.DataFrame | None = None,
) -> AlignmentReport:
    """Overlap, excluded-bar counts and |basis| quantiles (bps) of aligning ``a`` and ``b``.

    Pass ``aligned`` when :func:`align_venues` was already run on the same inputs.
    """
    if interval not in INTERVAL_MS:
        raise UserInputError(f"unknown interval {interval!r}")
    fa, a_off = _prepare(a, "a", interval)
    fb, b_off = _prepare(b, "b", interval)
    if aligned is None:
        aligned = fa.join(fb, on="open_time", how="inner").sort("open_time")
    ta, tb = fa["open_time"], fb["open_time"]
    a_only = fa.join(fb.select("open_time"), on="open_time", how="anti")["open_time"]
    b_only = fb.join(fa.select("open_time"), on="open_time", how="anti")["open_time"]
    if fa.height and fb.height:
        lo, hi = max(ta.min(), tb.min()), min(ta.max(), tb.max())  # type: ignore[type-var]
        a_in = int(a_only.is_between(lo, hi).sum())
        b_in = int(b_only.is_between(lo, hi).sum())
    else:
        a_in = b_in = 0
    n = aligned.height
    if n:
        ab = basis(aligned)["basis_bps"]
        absb = ab.abs()
        med = float(absb.median())  # type: ignore[arg-type]
        p99 = float(absb.quantile(0.99, interpolation="linear"))  # type: ignore[arg-type]
        mx = float(absb.max())  # type: ignore[arg-type]
        mean = float(ab.mean())  # type: ignore[arg-type]
        first, last = aligned["open_time"].min(), aligned["open_time"].max()
    else:
        med = p99 = mx = mean = math.nan
        first = last = None
    return AlignmentReport(
        interval=interval,
        a_bars=fa.height + a_off,
        b_bars=fb.height + b_off,
        overlap=n,
        a_only=a_only.len(),
        b_only=b_only.len(),
        a_only_in_span=a_in,
        b_only_in_span=b_in,
        a_off_grid=a_off,
        b_off_grid=b_off,
        first=first,  # type: ignore[arg-type]
        last=last,  # type: ignore[arg-type]
        median_abs_basis_bps=med,
        p99_abs_basis_bps=p99,
        max_abs_basis_bps=mx,
        mean_basis_bps=mean,
    )
