"""Per-hour and per-day aggregates of scored items, and their causal alignment to bars.

**Availability rule (no lookahead).** An item is usable only by bars that *open strictly
after* its publication time (the Fear & Greed rule of :mod:`trading_pipeline.market.sentiment`).
A bar opening at ``t`` sees the items published in ``[t - window, t)`` (``window`` 24 hours by
default): their count and the mean VADER ``compound`` of the scored (English) ones. No item
in the window is a well-defined value: count 0 and mean 0.0, never null, so a model trained
with sentiment gets the same numbers live when the feeds are quiet or absent.

The hourly table's hour ``H`` holds the items published in ``[H, H + 1h)``: a bar opening at
``H + 1h`` or later may use all of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta

import numpy as np
import polars as pl

from trading_pipeline.market.schema import UTC_US
from trading_pipeline.news.score import NEGATIVE, POSITIVE

ALL = "ALL"  # the row of every item, whichever coin it names (or none)
WINDOW = timedelta(hours=24)
AGG_SCHEMA: dict[str, pl.DataType] = {
    "coin": pl.String(),
    "items": pl.Int64(),
    "scored": pl.Int64(),
    "compound_mean": pl.Float64(),
    "pos_share": pl.Float64(),
    "neg_share": pl.Float64(),
}


def _per_coin(items: pl.DataFrame) -> pl.DataFrame:
    """Each item once under ``ALL`` and once per coin it names."""
    everything = items.with_columns(pl.lit(ALL).alias("coin"))
    named = items.explode("coins").filter(pl.col("coins").is_not_null())
    return pl.concat(
        [everything.drop("coins"), named.rename({"coins": "coin"})], how="diagonal_relaxed"
    )


def aggregate(items: pl.DataFrame, every: str) -> pl.DataFrame:
    """``<period>, coin, items, scored, compound_mean, pos_share, neg_share`` per UTC
    ``every`` (``1h`` or ``1d``) and coin (``ALL`` plus each coin named); shares are of the
    scored items; a period without scored items has mean and shares 0.0."""
    period = "hour" if every == "1h" else "day"
    schema = {period: UTC_US, **AGG_SCHEMA}
    if items.height == 0:
        return pl.DataFrame(schema=schema)
    scored = pl.col("compound").is_not_null()
    n = scored.sum()
    out = (
        _per_coin(items)
        .with_columns(pl.col("published_at").dt.truncate(every).alias(period))
        .group_by(period, "coin")
        .agg(
            pl.len().alias("items"),
            n.alias("scored"),
            pl.col("compound").mean().alias("compound_mean"),
            ((pl.col("compound") >= POSITIVE).sum() / n).alias("pos_share"),
            ((pl.col("compound") <= NEGATIVE).sum() / n).alias("neg_share"),
        )
        .with_columns(
            pl.col("compound_mean", "pos_share", "neg_share").fill_null(0.0).fill_nan(0.0)
        )
        .sort(period, pl.col("coin") != ALL, "coin")
    )
    return out.cast(schema).select(list(schema))  # type: ignore[arg-type]


def feature_columns(group: str) -> tuple[str, str]:
    """The state's two columns of a group (``x`` or a series key)."""
    return f"{group}.news_compound", f"{group}.news_items"


def window_stats(
    items: pl.DataFrame,
    open_times: pl.Series,
    *,
    coin: str | None = None,
    window: timedelta = WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """For each bar opening at ``t``: the mean ``compound`` of the scored items published in
    ``[t - window, t)`` (naming ``coin``, or any) and their count; (0.0, 0) when there are none.

    Each bar's mean is an exact sum (``math.fsum``) of its own window's values only, so it
    does not depend on what else is in ``items`` (the live decision and the training rows
    agree to the bit)."""
    rows = items.filter(pl.col("compound").is_not_null())
    if coin is not None:
        rows = rows.filter(pl.col("coins").list.contains(coin))
    rows = rows.sort("published_at")
    pub = rows.get_column("published_at").cast(UTC_US).dt.epoch("us").to_numpy()
    comp = rows.get_column("compound").to_numpy()
    t = open_times.cast(UTC_US).dt.epoch("us").to_numpy()
    hi = np.searchsorted(pub, t, side="left")  # published strictly before the open
    lo = np.searchsorted(pub, t - int(window.total_seconds() * 1_000_000), side="left")
    count = (hi - lo).astype(np.int64)
    mean = np.zeros(t.size)
    for i in np.flatnonzero(count):
        mean[i] = math.fsum(comp[lo[i] : hi[i]].tolist()) / count[i]
    return mean, count


def news_features(
    items: pl.DataFrame,
    open_times: pl.Series,
    coins: Mapping[str, str | None],
    *,
    cross: str = "x",
    window: timedelta = WINDOW,
) -> pl.DataFrame:
    """``open_time`` and, per group, ``<group>.news_compound`` and ``<group>.news_items``:
    each series key of ``coins`` (its coin's items; 0/0 for a coin outside the table) and
    ``cross`` (every item). By the availability rule of the module docstring."""
    out: dict[str, object] = {"open_time": open_times.cast(UTC_US)}
    for key in sorted(coins):
        mean, count = (
            window_stats(items, open_times, coin=coins[key], window=window)
            if coins[key] is not None
            else (np.zeros(len(open_times)), np.zeros(len(open_times), dtype=np.int64))
        )
        c_mean, c_items = feature_columns(key)
        out[c_mean], out[c_items] = mean, count.astype(float)
    mean, count = window_stats(items, open_times, window=window)
    c_mean, c_items = feature_columns(cross)
    out[c_mean], out[c_items] = mean, count.astype(float)
    return pl.DataFrame(out)
