"""Turn per-bar regime labels into periods, and summarise the share of time per regime."""

from __future__ import annotations

import math

import polars as pl

PERIOD_SCHEMA: dict[str, pl.DataType] = {
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "regime": pl.String(),
    "bars": pl.Int64(),
    "return": pl.Float64(),
    "volatility": pl.Float64(),
}


def segment(labels: pl.DataFrame, bars: pl.DataFrame, *, bars_per_year: float) -> pl.DataFrame:
    """Consecutive runs of one regime as periods.

    ``start``/``end``: open times of the run's first and last bar; ``bars``: its length;
    ``return``: close of its last bar over the close of the bar before it (its first bar's open
    for the very first run) minus one; ``volatility``: annualised standard deviation of the
    run's 1-bar log returns (null for a one-bar run).
    """
    df = labels.select("open_time", "regime").join(
        bars.select("open_time", "open", "close"), on="open_time", how="inner"
    )
    if df.height == 0:
        return pl.DataFrame(schema=PERIOD_SCHEMA)
    prev_close = pl.col("close").shift(1).fill_null(pl.col("open"))
    df = df.sort("open_time").with_columns(
        (pl.col("regime") != pl.col("regime").shift(1)).fill_null(True).cum_sum().alias("run"),
        (pl.col("close") / prev_close).log().alias("lr"),
    )
    out = (
        df.group_by("run", maintain_order=True)
        .agg(
            pl.col("open_time").first().alias("start"),
            pl.col("open_time").last().alias("end"),
            pl.col("regime").first(),
            pl.len().cast(pl.Int64).alias("bars"),
            (pl.col("lr").sum().exp() - 1).alias("return"),
            (pl.col("lr").std() * math.sqrt(bars_per_year)).alias("volatility"),
        )
        .drop("run")
    )
    return out.select(list(PERIOD_SCHEMA)).cast(PERIOD_SCHEMA)  # type: ignore[arg-type]


def share(labels: pl.DataFrame) -> dict[str, float]:
    """Fraction of bars per regime (sums to 1), largest first."""
    if labels.height == 0:
        return {}
    counts = labels.group_by("regime").len().sort(["len", "regime"], descending=[True, False])
    return {r: n / labels.height for r, n in counts.iter_rows()}
