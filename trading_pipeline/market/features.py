"""Feature frames: indicators for a month computed with warm-up, and cross-asset features.

*Warm-up.* A month's indicator values are computed on the month's bars plus the
``warmup_bars`` bars before it, then cut to the month, so a month computed alone equals the
same month inside a whole-history computation (to floating-point noise for the recursive
indicators, whose memory the registry bounds).

*Cross-asset.* The universe's closes are aligned on the open times where every symbol has a
bar (inner join; a symbol listed later shortens the frame). Every window is trailing: the row
at ``t`` reads bars ``<= t`` only.

- ``corr_<A>_<B>``: rolling Pearson correlation of the two symbols' 1-bar log returns.
- ``breadth_above_ma``: share of symbols whose close is above its own ``ma``-bar SMA.
- ``breadth_up``: share of symbols whose ``window``-bar return is positive.
- ``btc_return_share``: BTC's share of the universe's absolute ``window``-bar moves,
  ``|r_BTC| / sum_i |r_i|`` (1/N when BTC moves like everyone else, → 1 when it leads alone).
- ``btc_r2``: mean over the other symbols of their squared rolling correlation with BTC, i.e.
  how much of the alt moves BTC's returns explain.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from itertools import combinations

import polars as pl

from trading_pipeline.market.indicators import compute_features, warmup_bars


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """``[start, end)`` of a calendar month in UTC."""
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def window_features(
    bars: pl.DataFrame,
    start: datetime,
    end: datetime,
    *,
    indicators: list[str] | None = None,
) -> pl.DataFrame:
    """Indicator features of the bars with ``start <= open_time < end``, warmed up on earlier bars.

    ``bars`` is one series sorted by open_time and must hold the bars before ``start`` that the
    warm-up needs (fewer only at the very start of the history).
    """
    warm = warmup_bars(indicators)
    t = pl.col("open_time")
    before = bars.filter(t < start).tail(warm)
    inside = bars.filter((t >= start) & (t < end))
    if inside.height == 0:
        return compute_features(inside, indicators=indicators)
    feats = compute_features(pl.concat([before, inside]), indicators=indicators)
    return feats.slice(before.height)


def month_features(
    bars: pl.DataFrame, year: int, month: int, *, indicators: list[str] | None = None
) -> pl.DataFrame:
    """Indicator features of one calendar month (see :func:`window_features`)."""
    start, end = month_bounds(year, month)
    return window_features(bars, start, end, indicators=indicators)


def _aligned_closes(closes: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    if len(closes) < 2:
        raise ValueError("cross-asset features need at least two symbols")
    frames = [
        df.select("open_time", pl.col("close").cast(pl.Float64).alias(sym))
        for sym, df in closes.items()
    ]
    out = frames[0]
    for f in frames[1:]:
        out = out.join(f, on="open_time", how="inner")
    return out.sort("open_time")


def cross_asset_features(
    closes: Mapping[str, pl.DataFrame],
    *,
    window: int = 168,
    ma: int = 200,
    btc: str = "BTCUSDT",
) -> pl.DataFrame:
    """Rolling correlations, breadth and BTC dominance of returns (see the module docstring).

    ``closes`` maps a symbol to its bars (``open_time``, ``close``); ``btc`` names the symbol
    the dominance columns are measured against (they are left out when it is absent).
    """
    px = _aligned_closes(closes)
    syms = list(closes)
    ret = {s: pl.col(s).log().diff() for s in syms}
    exprs: list[pl.Expr] = []
    for a, b in combinations(syms, 2):
        exprs.append(pl.rolling_corr(ret[a], ret[b], window_size=window).alias(f"corr_{a}_{b}"))
    n = len(syms)
    above = [(pl.col(s) > pl.col(s).rolling_mean(ma)).cast(pl.Float64) for s in syms]
    exprs.append(
        pl.when(pl.col(syms[0]).rolling_mean(ma).is_not_null())
        .then(pl.sum_horizontal(above) / n)
        .alias("breadth_above_ma")
    )
    wret = {s: pl.col(s).log() - pl.col(s).log().shift(window) for s in syms}
    up = [(wret[s] > 0).cast(pl.Float64) for s in syms]
    exprs.append(
        pl.when(wret[syms[0]].is_not_null()).then(pl.sum_horizontal(up) / n).alias("breadth_up")
    )
    if btc in syms:
        total = pl.sum_horizontal([wret[s].abs() for s in syms])
        exprs.append(pl.when(total > 0).then(wret[btc].abs() / total).alias("btc_return_share"))
        others = [s for s in syms if s != btc]
        r2 = [pl.rolling_corr(ret[btc], ret[s], window_size=window) ** 2 for s in others]
        exprs.append(
            pl.when(r2[0].is_not_null()).then(pl.sum_horizontal(r2) / len(others)).alias("btc_r2")
        )
    out = px.select("open_time", *exprs)
    return out.with_columns(pl.exclude("open_time").fill_nan(None))
