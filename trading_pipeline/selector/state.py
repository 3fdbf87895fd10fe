"""The market state a selector decides on: causal, window-local features of a few series.

Every feature at bar ``t`` is a function of the bars ``t - STATE_WARMUP_BARS + 1 .. t`` only
(trailing, closed bars), and it is computed by the *same arithmetic* whether the whole history
is featurised (:func:`state_frame`, for datasets) or only the latest bar (:func:`latest_state`,
for the live decision): every rolling statistic reduces the same window of numbers through a
``sliding_window_view``, never a running sum whose rounding would depend on where the frame
starts. Recursive indicators (Wilder's RSI and ATR, EMAs, the regime labeller's confirmation
step) remember their whole past, so their simple-average forms are used instead.

Horizons are in bars (the selector is trained and run on one interval). Per series (names
prefixed ``<series key>.``):

- ``ret_<h>``: log return over ``h`` bars; ``vol_<h>``: std of 1-bar log returns over ``h``;
  ``vol_ratio``: ``vol_24 / vol_168`` (volatility expanding or contracting);
- ``trend_<h>``: close against its ``h``-bar SMA; ``dd``: close against the highest high of
  ``DD_BARS``; ``atr_pct``: mean true range over 14 bars / close; ``rsi``: Cutler's RSI(14);
- ``volume_z``: z-score of ``log1p(volume)`` against its past ``VOLUME_BARS``;
- ``regime_bull`` / ``regime_bear`` / ``regime_highvol``: the rules labeller's rules (close vs a
  rising/falling long SMA, drawdown; realised volatility above the 80th percentile of its own
  past) on the state window, without its path-dependent confirmation. The full labeller (400
  days of memory) stays the regime of record: :func:`trading_pipeline.regimes.current_regime`.

Across series (when two or more are given, on the open times they share): ``x.corr_mean``
(mean pairwise 168-bar correlation of 1-bar log returns), ``x.breadth_up`` (share of series
with a positive 168-bar return), ``x.breadth_above_ma`` (share above their 168-bar SMA).
Optionally ``x.fear_greed`` from :mod:`trading_pipeline.market.sentiment` (availability rule
applied there), and news/social sentiment from scored items (:mod:`trading_pipeline.news`):
``<series key>.news_compound`` / ``.news_items`` (items naming the series' coin) and
``x.news_compound`` / ``x.news_items`` (every item), over the 24 hours before the bar's open
(published strictly before it); no item is 0.0 and 0, never missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import INTERVAL_MS, UTC_US
from trading_pipeline.news.aggregate import feature_columns, news_features
from trading_pipeline.news.coins import coin_of_series

RET_HORIZONS = (24, 72, 168, 480)
VOL_HORIZONS = (24, 168)
TREND_HORIZONS = (168, 480)
DD_BARS = 480
ATR_BARS = 14
RSI_BARS = 14
VOLUME_BARS = 168
CORR_BARS = 168
REGIME_MA = 336
REGIME_SLOPE = 72
REGIME_VOL = 24
REGIME_VOL_PAST = 336
REGIME_VOL_QUANTILE = 0.8
BULL_MAX_DD = 0.30  # the rules labeller's thresholds
BEAR_DD = 0.20
# The longest look-back of any feature (ret_480 reads the close 480 bars back), plus one.
STATE_WARMUP_BARS = 481
CROSS = "x"

SERIES_FEATURES: tuple[str, ...] = (
    *(f"ret_{h}" for h in RET_HORIZONS),
    *(f"vol_{h}" for h in VOL_HORIZONS),
    "vol_ratio",
    *(f"trend_{h}" for h in TREND_HORIZONS),
    "dd",
    "atr_pct",
    "rsi",
    "volume_z",
    "regime_bull",
    "regime_bear",
    "regime_highvol",
)
CROSS_FEATURES: tuple[str, ...] = ("corr_mean", "breadth_up", "breadth_above_ma")


def feature_names(
    series: tuple[str, ...] | list[str], *, fear_greed: bool = False, news: bool = False
) -> list[str]:
    """The state's keys for these series, in the order :func:`state_frame` gives them (series
    sorted by key, so the order the bars come in never matters)."""
    names = [f"{s}.{f}" for s in sorted(series) for f in SERIES_FEATURES]
    if len(series) >= 2:
        names += [f"{CROSS}.{f}" for f in CROSS_FEATURES]
    if fear_greed:
        names.append(f"{CROSS}.fear_greed")
    if news:
        names += [c for g in (*sorted(series), CROSS) for c in feature_columns(g)]
    return names


def _windows(x: np.ndarray, h: int, rows: int) -> tuple[np.ndarray, int]:
    """The length-``h`` windows ending at the last ``rows`` positions that have a full window,
    and how many of the requested rows lack one (they come first, as NaN)."""
    n = x.size
    have = max(0, min(rows, n - h + 1))
    if have == 0:
        return np.empty((0, h)), rows
    return sliding_window_view(x[n - (have + h - 1) :], h), rows - have


def _pad(values: np.ndarray, missing: int) -> np.ndarray:
    return np.concatenate([np.full(missing, np.nan), values]) if missing else values


def _mean(x: np.ndarray, h: int, rows: int) -> np.ndarray:
    w, miss = _windows(x, h, rows)
    return _pad(w.mean(axis=1), miss)


def _std(x: np.ndarray, h: int, rows: int) -> np.ndarray:
    w, miss = _windows(x, h, rows)
    return _pad(w.std(axis=1, ddof=1) if h > 1 else np.zeros(len(w)), miss)


def _max(x: np.ndarray, h: int, rows: int) -> np.ndarray:
    w, miss = _windows(x, h, rows)
    return _pad(w.max(axis=1), miss)


def _lag(x: np.ndarray, k: int, rows: int) -> np.ndarray:
    """``x[t - k]`` for the last ``rows`` positions ``t`` (NaN before the start)."""
    n = x.size
    idx = np.arange(n - rows, n) - k
    out = np.full(rows, np.nan)
    ok = idx >= 0
    out[ok] = x[idx[ok]]
    return out


def _tail(x: np.ndarray, rows: int) -> np.ndarray:
    return _pad(x[max(0, x.size - rows) :], max(0, rows - x.size))


def _arrays(bars: pl.DataFrame) -> dict[str, np.ndarray]:
    missing = [c for c in ("open_time", "high", "low", "close", "volume") if c not in bars.columns]
    if missing:
        raise UserInputError(f"bars lack columns: {', '.join(missing)}")
    out = {
        c: np.ascontiguousarray(bars.get_column(c).cast(pl.Float64).fill_null(np.nan).to_numpy())
        for c in ("high", "low", "close", "volume")
    }
    if np.any(~(out["close"] > 0)):
        raise UserInputError("bars hold a missing or non-positive close")
    out["volume"] = np.nan_to_num(out["volume"], nan=0.0)
    return out


def _series_features(a: Mapping[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """Per-series features at the last ``rows`` bars of ``a`` (see the module docstring)."""
    c, hi, lo = a["close"], a["high"], a["low"]
    logc = np.log(c)
    lr = np.concatenate([[np.nan], np.diff(logc)])
    out: dict[str, np.ndarray] = {}
    for h in RET_HORIZONS:
        out[f"ret_{h}"] = _tail(logc, rows) - _lag(logc, h, rows)
    for h in VOL_HORIZONS:
        out[f"vol_{h}"] = _std(lr, h, rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["vol_ratio"] = out[f"vol_{VOL_HORIZONS[0]}"] / out[f"vol_{VOL_HORIZONS[-1]}"]
        close = _tail(c, rows)
        for h in TREND_HORIZONS:
            out[f"trend_{h}"] = close / _mean(c, h, rows) - 1.0
        high_max = _max(hi, DD_BARS, rows)
        out["dd"] = close / high_max - 1.0
        prev = np.concatenate([[np.nan], c[:-1]])
        tr = np.fmax(hi - lo, np.fmax(np.abs(hi - prev), np.abs(lo - prev)))
        out["atr_pct"] = _mean(tr, ATR_BARS, rows) / close
        diff = np.concatenate([[np.nan], np.diff(c)])
        gain = _mean(np.where(diff > 0, diff, 0.0) + 0 * diff, RSI_BARS, rows)
        loss = _mean(np.where(diff < 0, -diff, 0.0) + 0 * diff, RSI_BARS, rows)
        total = gain + loss
        out["rsi"] = np.where(total > 0, 100.0 * gain / np.where(total > 0, total, 1.0), 50.0)
        out["rsi"][np.isnan(total)] = np.nan
        lv = np.log1p(a["volume"])
        past_mean = _mean(lv, VOLUME_BARS, rows + 1)[:-1]  # bars t-168 .. t-1
        past_std = _std(lv, VOLUME_BARS, rows + 1)[:-1]
        out["volume_z"] = np.where(
            past_std > 0, (_tail(lv, rows) - past_mean) / np.where(past_std > 0, past_std, 1), 0.0
        )
        out["volume_z"][np.isnan(past_std)] = np.nan
        # regime, by the rules labeller's rules on the state window
        ma = _mean(c, REGIME_MA, rows + REGIME_SLOPE)
        ma_now, ma_then = ma[REGIME_SLOPE:], ma[:-REGIME_SLOPE]
        slope = ma_now / ma_then - 1.0
        known = ~np.isnan(slope) & ~np.isnan(out["dd"])
        bull = (close > ma_now) & (slope > 0) & (out["dd"] > -BULL_MAX_DD)
        bear = (close < ma_now) & ((slope < 0) | (out["dd"] <= -BEAR_DD))
        rv = _std(lr, REGIME_VOL, rows + REGIME_VOL_PAST)
        past = sliding_window_view(rv, REGIME_VOL_PAST)[:-1] if rv.size > REGIME_VOL_PAST else None
        if past is not None and past.shape[0] == rows:
            thr = np.quantile(past, REGIME_VOL_QUANTILE, axis=1)  # NaN while any is missing
        else:
            thr = np.full(rows, np.nan)
        rv_now = rv[-rows:]
        vol_known = ~np.isnan(thr) & ~np.isnan(rv_now)
    out["regime_bull"] = np.where(known, bull.astype(float), np.nan)
    out["regime_bear"] = np.where(known, bear.astype(float), np.nan)
    out["regime_highvol"] = np.where(vol_known, (rv_now > thr).astype(float), np.nan)
    return out


def _cross_features(closes: list[np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """Correlation and breadth across aligned closes, at the last ``rows`` bars."""
    lrs = [np.concatenate([[np.nan], np.diff(np.log(c))]) for c in closes]
    corrs = []
    for i, j in combinations(range(len(closes)), 2):
        x, y = lrs[i], lrs[j]
        mx, my = _mean(x, CORR_BARS, rows), _mean(y, CORR_BARS, rows)
        cov = _mean(x * y, CORR_BARS, rows) - mx * my
        vx = _mean(x * x, CORR_BARS, rows) - mx * mx
        vy = _mean(y * y, CORR_BARS, rows) - my * my
        with np.errstate(divide="ignore", invalid="ignore"):
            den = np.sqrt(np.maximum(vx, 0.0) * np.maximum(vy, 0.0))
            corrs.append(np.where(den > 0, cov / np.where(den > 0, den, 1.0), 0.0))
            corrs[-1][np.isnan(den)] = np.nan
    h = TREND_HORIZONS[0]
    ups, above = [], []
    for c in closes:
        logc = np.log(c)
        r = _tail(logc, rows) - _lag(logc, h, rows)
        ups.append(np.where(np.isnan(r), np.nan, (r > 0).astype(float)))
        ma = _mean(c, h, rows)
        above.append(np.where(np.isnan(ma), np.nan, (_tail(c, rows) > ma).astype(float)))
    return {
        "corr_mean": np.mean(np.vstack(corrs), axis=0),
        "breadth_up": np.mean(np.vstack(ups), axis=0),
        "breadth_above_ma": np.mean(np.vstack(above), axis=0),
    }


def _check(bars: Mapping[str, pl.DataFrame], interval: str) -> list[str]:
    if interval not in INTERVAL_MS:
        raise UserInputError(f"unknown interval {interval!r}")
    if not bars:
        raise UserInputError("no series given for the market state")
    for key, df in bars.items():
        if df.height == 0:
            raise UserInputError(f"series {key} has no bars")
    return sorted(bars)  # a canonical order: cross-asset sums never depend on the caller's


def _aligned(bars: Mapping[str, pl.DataFrame], keys: list[str]) -> pl.DataFrame:
    out = bars[keys[0]].select("open_time", pl.col("close").cast(pl.Float64).alias(keys[0]))
    for k in keys[1:]:
        right = bars[k].select("open_time", pl.col("close").cast(pl.Float64).alias(k))
        out = out.join(right, on="open_time", how="inner")
    return out.sort("open_time")


def state_frame(
    bars: Mapping[str, pl.DataFrame],
    *,
    interval: str,
    fear_greed: pl.DataFrame | None = None,
    news: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``open_time`` and every state feature, one row per bar the series share.

    ``bars`` maps a series key to its bars sorted by ``open_time``. The row at ``t`` describes
    the market at the close of bar ``t``: a decision taken at ``t``'s close (the next bar's
    open) may use it. Rows without enough history hold NaN.
    """
    keys = _check(bars, interval)
    frames = []
    for k in keys:
        df = bars[k].sort("open_time")
        feats = _series_features(_arrays(df), df.height)
        frames.append(
            pl.DataFrame(
                {"open_time": df.get_column("open_time").cast(UTC_US)}
                | {f"{k}.{f}": feats[f] for f in SERIES_FEATURES}
            )
        )
    out = frames[0]
    for f in frames[1:]:
        out = out.join(f, on="open_time", how="inner")
    out = out.sort("open_time")
    if len(keys) >= 2:
        px = _aligned(bars, keys)
        cross = _cross_features([px.get_column(k).to_numpy() for k in keys], px.height)
        cross_df = pl.DataFrame(
            {"open_time": px.get_column("open_time").cast(UTC_US)}
            | {f"{CROSS}.{f}": cross[f] for f in CROSS_FEATURES}
        )
        out = out.join(cross_df, on="open_time", how="left")
    if fear_greed is not None:
        out = out.join(_fng(fear_greed, out), on="open_time", how="left")
    if news is not None:  # scored items (any number, even none: then 0.0 and 0 throughout)
        sentiment = news_features(news, out.get_column("open_time"), _coins(keys), cross=CROSS)
        out = out.join(sentiment, on="open_time", how="left")
    return out.with_columns(pl.exclude("open_time").cast(pl.Float64).fill_null(np.nan))


def _fng(fear_greed: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    from trading_pipeline.market.sentiment import align_to_bars

    aligned = align_to_bars(fear_greed, frame.select("open_time"))
    return aligned.select("open_time", pl.col("fear_greed").alias(f"{CROSS}.fear_greed"))


def _coins(keys: list[str]) -> dict[str, str | None]:
    return {k: coin_of_series(k) for k in keys}


def latest_state(
    bars: Mapping[str, pl.DataFrame],
    *,
    interval: str,
    fear_greed: pl.DataFrame | None = None,
    news: pl.DataFrame | None = None,
) -> dict[str, float]:
    """The market state at the close of the last bar of each frame (keys as in
    :func:`feature_names`), from its trailing ``STATE_WARMUP_BARS`` bars only.

    Equal to :func:`state_frame`'s row at that bar when the frames end at the same time.
    """
    keys = _check(bars, interval)
    state: dict[str, float] = {}
    tails = {k: bars[k].tail(STATE_WARMUP_BARS) for k in keys}
    for k in keys:
        feats = _series_features(_arrays(tails[k]), 1)
        state.update({f"{k}.{f}": float(feats[f][-1]) for f in SERIES_FEATURES})
    if len(keys) >= 2:
        px = _aligned(tails, keys)
        if px.height:
            cross = _cross_features([px.get_column(k).to_numpy() for k in keys], 1)
            state.update({f"{CROSS}.{f}": float(cross[f][-1]) for f in CROSS_FEATURES})
        else:
            state.update({f"{CROSS}.{f}": float("nan") for f in CROSS_FEATURES})
    if fear_greed is not None:
        last = min(tails[k].get_column("open_time").max() for k in keys)  # type: ignore[type-var]
        frame = pl.DataFrame({"open_time": [last]}).with_columns(pl.col("open_time").cast(UTC_US))
        value = _fng(fear_greed, frame).item(0, 1)
        state[f"{CROSS}.fear_greed"] = float("nan") if value is None else float(value)
    if news is not None:
        last = min(tails[k].get_column("open_time").max() for k in keys)  # type: ignore[type-var]
        at = pl.Series("open_time", [last]).cast(UTC_US)
        row = news_features(news, at, _coins(keys), cross=CROSS).row(0, named=True)
        state.update({k: float(v) for k, v in row.items() if k != "open_time"})
    return state


__all__ = [
    "STATE_WARMUP_BARS",
    "feature_names",
    "latest_state",
    "state_frame",
]
