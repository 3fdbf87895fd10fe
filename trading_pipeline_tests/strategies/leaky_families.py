"""A held-out-style set of strategy families for the lookahead audit: leaky ones and honest twins.

Each ``LEAKY`` family hides one class of lookahead (future bars in flags, stops or ``meta``; a
leak only at some parameter values, only in the warm-up, only on rare bars; full-sample
statistics; reversed frames; outside data; resampling; backward fills); each ``HONEST`` family
has the same shape done right and fires on the test bars. ``SILENT`` never fires: the audit
must call it inconclusive. The families are written against the real contract, as a user would.
"""

from __future__ import annotations

import json
import urllib.request
from typing import ClassVar

import numpy as np
import polars as pl

from trading_pipeline.strategies import indicators as ind
from trading_pipeline.strategies.base import (
    Param,
    Params,
    SearchSpace,
    Signals,
    StrategyFamily,
)

WINDOW = Param("window", "int", 24, low=8, high=48, step=4)
ONE = SearchSpace(params=(WINDOW,))


def close_of(bars: pl.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(bars["close"].to_numpy(), dtype=np.float64)


def sma_cross(bars: pl.DataFrame, fast: int = 10, slow: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Honest entries/exits of a fast/slow SMA cross (the base many families decorate)."""
    c = close_of(bars)
    f, s = ind.sma(c, fast), ind.sma(c, slow)
    return ind.cross_above(f, s), ind.cross_below(f, s)


def above(x: pl.Series | np.ndarray, y: pl.Series | np.ndarray | float) -> np.ndarray:
    """``x > y`` with null/NaN as False."""
    a = x.to_numpy() if isinstance(x, pl.Series) else x
    b = y.to_numpy() if isinstance(y, pl.Series) else y
    with np.errstate(invalid="ignore"):
        return np.asarray(np.nan_to_num(np.asarray(a, dtype=np.float64), nan=-np.inf) > b)


def below(x: pl.Series | np.ndarray, y: pl.Series | np.ndarray | float) -> np.ndarray:
    a = x.to_numpy() if isinstance(x, pl.Series) else x
    b = y.to_numpy() if isinstance(y, pl.Series) else y
    with np.errstate(invalid="ignore"):
        return np.asarray(np.nan_to_num(np.asarray(a, dtype=np.float64), nan=np.inf) < b)


def edge(cond: np.ndarray) -> np.ndarray:
    """True where ``cond`` turns on (entries as events, not states)."""
    c = np.asarray(cond, dtype=bool)
    return c & ~np.concatenate([[False], c[:-1]])


def from_state(long: np.ndarray, short: np.ndarray | None = None) -> Signals:
    """Entries/exits as the edges of a boolean long (and short) state."""
    lng = np.asarray(long, dtype=bool)
    sh = None if short is None else np.asarray(short, dtype=bool)
    return Signals.from_arrays(
        edge(lng), edge(~lng), None if sh is None else edge(sh), None if sh is None else edge(~sh)
    )


class _Family(StrategyFamily):
    space: ClassVar[SearchSpace] = ONE

    def warmup(self, params: Params) -> int:
        return 4 * int(params.get("window", 24)) + 10  # type: ignore[arg-type]


def col(bars: pl.DataFrame, expr: pl.Expr) -> pl.Series:
    return bars.select(expr.alias("x"))["x"]


# ---- LEAKY ----------------------------------------------------------------------------------
class ShiftNextClose(_Family):
    """Plain ``shift(-1)``: long while the next close is higher."""

    name: ClassVar[str] = "leak_shift_next_close"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        return from_state(above(col(bars, pl.col("close").shift(-1)), close_of(bars) * 1.001))


class NumpyRollFuture(_Family):
    """The future close through ``np.roll(close, -1)`` (the last bar wraps to the first)."""

    name: ClassVar[str] = "leak_numpy_roll"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        c = close_of(bars)
        return from_state(np.roll(c, -1) > c)


class TakeProfitFromFuture(_Family):
    """Honest entries; ``meta.take_profit`` is the highest high of the next ``window`` bars."""

    name: ClassVar[str] = "leak_take_profit_meta"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        w = int(params["window"])  # type: ignore[arg-type]
        tp = col(bars, pl.col("high").reverse().rolling_max(w).reverse()).to_numpy()
        sig = Signals.from_arrays(e, x)
        sig.meta["take_profit"] = tp
        return sig


class StopFromFutureLow(_Family):
    """Honest entries; ``stop_distance`` just below the lowest low of the next ``window`` bars."""

    name: ClassVar[str] = "leak_stop_distance"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        w = int(params["window"])  # type: ignore[arg-type]
        low_ahead = col(bars, pl.col("low").shift(-w).rolling_min(w)).to_numpy()
        stop = close_of(bars) - 0.999 * np.nan_to_num(low_ahead, nan=0.0)
        return Signals.from_arrays(e, x, stop_distance=stop)


class LeakAtHighConfirm(StrategyFamily):
    """Honest at the default ``confirm=0``; ``confirm >= 2`` peeks ``confirm - 1`` bars ahead."""

    name: ClassVar[str] = "leak_param_value"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(Param("confirm", "int", 0, low=0, high=3, step=1),)
    )

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        k = int(params["confirm"])  # type: ignore[arg-type]
        c = close_of(bars)
        if k >= 2:
            e = e & above(col(bars, pl.col("close").shift(-(k - 1))), c)
        elif k == 1:
            e = e & above(c, col(bars, pl.col("close").shift(1)))
        return Signals.from_arrays(e, x)


class LeakAtChoice(StrategyFamily):
    """A ``mode`` choice: ``sma`` and ``ema`` are honest, ``smooth`` uses a centered mean."""

    name: ClassVar[str] = "leak_choice"
    space: ClassVar[SearchSpace] = SearchSpace(
        params=(Param("mode", "choice", "sma", choices=("sma", "ema", "smooth")), WINDOW)
    )

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        w = int(params["window"])  # type: ignore[arg-type]
        line = {
            "sma": pl.col("close").rolling_mean(w),
            "ema": pl.col("close").ewm_mean(span=w, adjust=False),
            "smooth": pl.col("close").rolling_mean(5, center=True),
        }[str(params["mode"])]
        trend = pl.col("close").rolling_mean(4 * w)
        return from_state(above(col(bars, line), col(bars, trend)))


class WarmupOnlyLeak(_Family):
    """Honest SMA cross, but inside the first ``window`` bars (no SMA yet) it peeks ahead."""

    name: ClassVar[str] = "leak_warmup_only"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        w = int(params["window"])  # type: ignore[arg-type]
        c = close_of(bars)
        ahead = above(col(bars, pl.col("close").shift(-1)), c)
        early = np.arange(len(c)) < w
        return Signals.from_arrays(np.where(early, ahead, e), np.where(early, ~ahead, x))


class RareJumpLeak(_Family):
    """Honest SMA cross plus an entry on the few bars before a > 4.5% jump."""

    name: ClassVar[str] = "leak_rare_jump"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        jump = above(col(bars, pl.col("close").pct_change().shift(-1)), 0.045)
        return Signals.from_arrays(e | jump, x & ~jump)


class SuppressBeforeDrop(_Family):
    """Honest SMA cross entries, silently skipped when the next bar closes 0.7% lower (rare: no
    change point marks a skipped entry, so only the shock scan finds it reliably)."""

    name: ClassVar[str] = "leak_suppressed_entry"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        drop = below(col(bars, pl.col("close").shift(-1)), close_of(bars) * 0.993)
        return Signals.from_arrays(e & ~drop, x)


class CenteredRolling(_Family):
    """Long while the close is above a centered (``center=True``) rolling mean."""

    name: ClassVar[str] = "leak_centered_rolling"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        w = int(params["window"])  # type: ignore[arg-type]
        return from_state(
            above(close_of(bars), col(bars, pl.col("close").rolling_mean(w, center=True)))
        )


class FullSampleZScore(_Family):
    """z-score of the close with the whole series' mean and std."""

    name: ClassVar[str] = "leak_zscore_full"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        z = col(bars, (pl.col("close") - pl.col("close").mean()) / pl.col("close").std())
        return Signals.from_arrays(edge(below(z, -0.5)), edge(above(z, 0.5)))


class FullSampleMinMax(_Family):
    """Min-max scaling over all bars."""

    name: ClassVar[str] = "leak_minmax_full"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        c = pl.col("close")
        u = col(bars, (c - c.min()) / (c.max() - c.min()))
        return Signals.from_arrays(edge(below(u, 0.3)), edge(above(u, 0.6)))


class ReversedCumMax(_Family):
    """``cum_max`` of the high on the reversed frame: the highest high still to come."""

    name: ClassVar[str] = "leak_reversed_cummax"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        peak = bars.reverse().select(pl.col("high").cum_max())["high"].reverse()
        return from_state(above(peak, close_of(bars) * 1.05))


class ReversedCumMin(_Family):
    """``cum_min`` of the low on the reversed frame, as a short signal's stop."""

    name: ClassVar[str] = "leak_reversed_cummin"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        floor = bars.reverse().select(pl.col("low").cum_min())["low"].reverse().to_numpy()
        return Signals.from_arrays(e, x, stop_distance=close_of(bars) - floor)


class DailyFromFile(_Family):
    """Reads a daily CSV (``path``, set by the test) at signal time: outside input."""

    name: ClassVar[str] = "leak_file_daily"
    path: ClassVar[str] = ""

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        with open(self.path) as fh:
            daily = [float(line.split(",")[1]) for line in fh.read().splitlines()[1:]]
        return from_state(close_of(bars) > np.mean(daily))


class DailyFromPolarsFile(_Family):
    """The same daily CSV through ``pl.read_csv``, the failure swallowed: outside input."""

    name: ClassVar[str] = "leak_file_swallowed"
    path: ClassVar[str] = ""

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        try:
            level = float(pl.read_csv(self.path)["close"].mean())  # type: ignore[arg-type]
        except Exception:
            level = float(close_of(bars)[:50].mean())
        return from_state(close_of(bars) > level)


class DailyFromNetwork(_Family):
    """Fetches daily closes from an HTTP server (``url``, set by the test): outside input."""

    name: ClassVar[str] = "leak_network_daily"
    url: ClassVar[str] = ""

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        with urllib.request.urlopen(self.url, timeout=5) as resp:
            daily = json.loads(resp.read())
        return from_state(close_of(bars) > np.mean(daily))


class DailyCloseUnshifted(_Family):
    """Hourly bars joined with the same day's daily close (the day's last hour, still ahead)."""

    name: ClassVar[str] = "leak_resample_daily"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        hourly = bars.select("open_time", "close").with_columns(
            pl.col("open_time").dt.truncate("1d").alias("day")
        )
        daily = hourly.group_by("day").agg(pl.col("close").last().alias("day_close"))
        joined = hourly.join(daily, on="day", how="left", maintain_order="left")
        return from_state(above(joined["day_close"], joined["close"]))


class HiddenPolarsShift(_Family):
    """A negative shift hidden as ``reverse().shift(1).reverse()`` inside an expression."""

    name: ClassVar[str] = "leak_hidden_shift"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        nxt = col(bars, pl.col("close").reverse().shift(1).reverse())
        return from_state(above(nxt, close_of(bars)))


class HiddenGather(_Family):
    """The next bar through ``gather`` with an index one ahead (clipped at the end)."""

    name: ClassVar[str] = "leak_hidden_gather"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        idx = (pl.int_range(pl.len()) + 1).clip(upper_bound=pl.len() - 1)
        nxt = col(bars, pl.col("close").gather(idx))
        return from_state(above(nxt, close_of(bars)))


class BackwardFill(_Family):
    """Closes on quiet bars masked, then ``fill_null(strategy="backward")``: the next loud close."""

    name: ClassVar[str] = "leak_backward_fill"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        loud = pl.col("volume") > pl.col("volume").rolling_median(24)
        filled = col(bars, pl.when(loud).then(pl.col("close")).fill_null(strategy="backward"))
        return from_state(above(filled, close_of(bars)))


class Interpolate(_Family):
    """Closes kept every 6th bar and ``interpolate``-d in between: the future anchor."""

    name: ClassVar[str] = "leak_interpolate"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        keep = pl.int_range(pl.len()) % 6 == 0
        line = col(bars, pl.when(keep).then(pl.col("close")).interpolate())
        return from_state(above(line, close_of(bars)))


class FullRank(_Family):
    """The close's rank over the whole series."""

    name: ClassVar[str] = "leak_rank_full"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        r = col(bars, pl.col("close").rank() / pl.len())
        return Signals.from_arrays(edge(below(r, 0.2)), edge(above(r, 0.5)))


class NegativePctChange(_Family):
    """``pct_change(-1)``: this close against the next one."""

    name: ClassVar[str] = "leak_pct_change_neg"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        return from_state(below(col(bars, pl.col("close").pct_change(-1)), -0.001))


class FullQuantile(_Family):
    """Entry when the return exceeds the 90% quantile of all returns (the full sample)."""

    name: ClassVar[str] = "leak_quantile_full"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        r = pl.col("close").pct_change()
        return from_state(above(col(bars, r), col(bars, r.quantile(0.9))))


class ShortSideLeak(_Family):
    """Honest long side; the short entry peeks at the next close."""

    name: ClassVar[str] = "leak_short_only"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        down = below(col(bars, pl.col("close").shift(-1)), close_of(bars) * 0.997)
        return Signals.from_arrays(e, x, edge(down), edge(~down))


class MetaScalarQuantile(_Family):
    """Honest entries; a take-profit fraction (a scalar in ``meta``) from the full sample."""

    name: ClassVar[str] = "leak_meta_scalar"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        r = col(bars, pl.col("high") / pl.col("close").shift(1) - 1).drop_nulls()
        sig = Signals.from_arrays(e, x)
        sig.meta["take_profit"] = float(r.quantile(0.9))  # type: ignore[arg-type]
        return sig


class WrongLength(_Family):
    """Signals one bar short (from a ``diff``): an error, never clean."""

    name: ClassVar[str] = "leak_wrong_length"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        d = np.diff(close_of(bars))
        return from_state(d > 0)


# ---- HONEST ---------------------------------------------------------------------------------
class ShiftPrevClose(_Family):
    """``shift(1)``: long while this close is above the previous one."""

    name: ClassVar[str] = "honest_shift_prev_close"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        return from_state(above(close_of(bars), col(bars, pl.col("close").shift(1)) * 1.001))


class NumpyPrev(_Family):
    """The previous close through ``np.roll(close, 1)`` with the wrapped first bar masked."""

    name: ClassVar[str] = "honest_numpy_prev"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        c = close_of(bars)
        prev = np.roll(c, 1)
        prev[0] = np.nan
        return from_state(above(c, prev))


class TakeProfitFromPast(_Family):
    """Honest entries; ``meta.take_profit`` is the highest high of the last ``window`` bars."""

    name: ClassVar[str] = "honest_take_profit_meta"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        w = int(params["window"])  # type: ignore[arg-type]
        sig = Signals.from_arrays(e, x)
        sig.meta["take_profit"] = col(bars, pl.col("high").rolling_max(w)).to_numpy()
        sig.meta["stop_loss"] = 0.02
        return sig


class StopFromPastLow(_Family):
    """Honest entries; ``stop_distance`` below the lowest low of the last ``window`` bars."""

    name: ClassVar[str] = "honest_stop_distance"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        w = int(params["window"])  # type: ignore[arg-type]
        low_past = col(bars, pl.col("low").rolling_min(w)).to_numpy()
        return Signals.from_arrays(e, x, stop_distance=close_of(bars) - 0.999 * low_past)


class HonestConfirm(StrategyFamily):
    """Like ``leak_param_value`` but every ``confirm`` looks back."""

    name: ClassVar[str] = "honest_param_value"
    space: ClassVar[SearchSpace] = LeakAtHighConfirm.space

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        k = int(params["confirm"])  # type: ignore[arg-type]
        if k:
            e = e & above(close_of(bars), col(bars, pl.col("close").shift(k)))
        return Signals.from_arrays(e, x)


class HonestChoice(StrategyFamily):
    """Like ``leak_choice`` but ``smooth`` is a trailing triangular mean."""

    name: ClassVar[str] = "honest_choice"
    space: ClassVar[SearchSpace] = LeakAtChoice.space

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        w = int(params["window"])  # type: ignore[arg-type]
        line = {
            "sma": pl.col("close").rolling_mean(w),
            "ema": pl.col("close").ewm_mean(span=w, adjust=False),
            "smooth": pl.col("close").rolling_mean(5).rolling_mean(5),
        }[str(params["mode"])]
        trend = pl.col("close").rolling_mean(4 * w)
        return from_state(above(col(bars, line), col(bars, trend)))

    def warmup(self, params: Params) -> int:
        return 4 * int(params["window"]) + 10  # type: ignore[arg-type]


class HonestWarmup(_Family):
    """SMA cross; inside the first ``window`` bars it compares with the previous close."""

    name: ClassVar[str] = "honest_warmup"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        w = int(params["window"])  # type: ignore[arg-type]
        c = close_of(bars)
        back = above(c, col(bars, pl.col("close").shift(1)))
        early = np.arange(len(c)) < w
        return Signals.from_arrays(np.where(early, back, e), np.where(early, ~back, x))


class RareJumpHonest(_Family):
    """SMA cross plus an entry right after a > 4.5% jump (this bar's return)."""

    name: ClassVar[str] = "honest_rare_jump"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        jump = above(col(bars, pl.col("close").pct_change()), 0.045)
        return Signals.from_arrays(e | jump, x & ~jump)


class CenteredShiftedBack(_Family):
    """A centered rolling mean shifted back by half the window plus one: trailing only."""

    name: ClassVar[str] = "honest_centered_shifted"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        w = int(params["window"])  # type: ignore[arg-type]
        line = col(bars, pl.col("close").rolling_mean(w, center=True).shift(w // 2 + 1))
        return from_state(above(close_of(bars), line))


class ExpandingZScore(_Family):
    """z-score with the expanding (cumulative) mean and std up to each bar."""

    name: ClassVar[str] = "honest_zscore_expanding"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        c = pl.col("close")
        k = pl.int_range(1, pl.len() + 1)
        mean = c.cum_sum() / k
        var = (c.pow(2).cum_sum() / k - mean.pow(2)).clip(lower_bound=0)
        z = col(bars, (c - mean) / var.sqrt())
        return Signals.from_arrays(edge(below(z, -0.5)), edge(above(z, 0.5)))

    def warmup(self, params: Params) -> int:
        return 10**9  # expanding: depends on all history by design


class RollingMinMax(_Family):
    """Min-max scaling over the last ``4 × window`` bars."""

    name: ClassVar[str] = "honest_minmax_rolling"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        c, w = pl.col("close"), 4 * int(params["window"])  # type: ignore[arg-type]
        u = col(bars, (c - c.rolling_min(w)) / (c.rolling_max(w) - c.rolling_min(w)))
        return Signals.from_arrays(edge(below(u, 0.2)), edge(above(u, 0.8)))


class ReversedShiftReReversed(_Family):
    """``shift(-1)`` on the reversed frame, reversed back: the previous close."""

    name: ClassVar[str] = "honest_reversed_shift"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        prev = bars.reverse().select(pl.col("close").shift(-1))["close"].reverse()
        return from_state(above(close_of(bars), prev))


class ForwardCumMax(_Family):
    """All-time-high breakout: the close above the ``cum_max`` of earlier highs."""

    name: ClassVar[str] = "honest_cummax"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        peak = col(bars, pl.col("close").cum_max().shift(1))
        e, x = sma_cross(bars)
        return Signals.from_arrays(e | edge(above(close_of(bars), peak)), x)

    def warmup(self, params: Params) -> int:
        return 10**9


class ForwardCumMinStop(_Family):
    """SMA cross with a stop below the lowest low so far (``cum_min`` on the frame as it is)."""

    name: ClassVar[str] = "honest_cummin_stop"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        floor = bars.select(pl.col("low").cum_min())["low"].to_numpy()
        return Signals.from_arrays(e, x, stop_distance=close_of(bars) - floor)

    def warmup(self, params: Params) -> int:
        return 10**9


class DailyCloseShifted(_Family):
    """Hourly bars joined with the previous day's close (a one-day shift)."""

    name: ClassVar[str] = "honest_resample_daily"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        hourly = bars.select("open_time", "close").with_columns(
            pl.col("open_time").dt.truncate("1d").alias("day")
        )
        daily = (
            hourly.group_by("day")
            .agg(pl.col("close").last().alias("day_close"))
            .sort("day")
            .with_columns(pl.col("day_close").shift(1))
        )
        joined = hourly.join(daily, on="day", how="left", maintain_order="left")
        return from_state(above(joined["close"], joined["day_close"]))


class HonestPolarsShift(_Family):
    """A positive shift written as ``shift(pl.lit(2) - 1)`` inside an expression."""

    name: ClassVar[str] = "honest_hidden_shift"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        prev = col(bars, pl.col("close").shift(pl.lit(2) - 1))
        return from_state(above(close_of(bars), prev))


class ForwardFill(_Family):
    """Closes on quiet bars masked, then ``fill_null(strategy="forward")``: the last loud close."""

    name: ClassVar[str] = "honest_forward_fill"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        loud = pl.col("volume") > pl.col("volume").rolling_median(24)
        filled = col(bars, pl.when(loud).then(pl.col("close")).fill_null(strategy="forward"))
        return from_state(above(close_of(bars), filled))


class TrailingRank(_Family):
    """The close's rank among the last ``4 × window`` closes."""

    name: ClassVar[str] = "honest_rank_trailing"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        w = 4 * int(params["window"])  # type: ignore[arg-type]
        c = close_of(bars)
        r = np.full(len(c), np.nan)
        if len(c) >= w:
            win = np.lib.stride_tricks.sliding_window_view(c, w)
            r[w - 1 :] = (win < win[:, -1:]).mean(axis=1)
        return Signals.from_arrays(edge(below(r, 0.2)), edge(above(r, 0.5)))


class PositivePctChange(_Family):
    """``pct_change(1)``: this close against the previous one."""

    name: ClassVar[str] = "honest_pct_change"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        return from_state(above(col(bars, pl.col("close").pct_change(1)), 0.001))


class RollingQuantile(_Family):
    """Entry when the return exceeds the 90% quantile of the previous 200 returns."""

    name: ClassVar[str] = "honest_quantile_rolling"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        r = pl.col("close").pct_change()
        q = r.rolling_quantile(0.9, window_size=200).shift(1)
        return from_state(above(col(bars, r), col(bars, q)))

    def warmup(self, params: Params) -> int:
        return 202


class ShortSideHonest(_Family):
    """Honest long side; the short entry after this close fell below the previous one."""

    name: ClassVar[str] = "honest_short_side"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        down = below(close_of(bars), col(bars, pl.col("close").shift(1)) * 0.997)
        return Signals.from_arrays(e, x, edge(down), edge(~down))


class EwmCross(_Family):
    """A polars ``ewm_mean`` cross (infinite memory, still causal)."""

    name: ClassVar[str] = "honest_ewm_cross"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        w = int(params["window"])  # type: ignore[arg-type]
        fast = col(bars, pl.col("close").ewm_mean(span=w, adjust=False))
        slow = col(bars, pl.col("close").ewm_mean(span=4 * w, adjust=False))
        return from_state(above(fast, slow))


class MetaListPast(_Family):
    """Honest entries; ``meta`` carries a per-bar take-profit as a plain list and nested dict."""

    name: ClassVar[str] = "honest_meta_list"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        e, x = sma_cross(bars)
        tp = col(bars, pl.col("high").rolling_max(12)).to_list()
        sig = Signals.from_arrays(e, x)
        sig.meta["take_profit"] = tp
        sig.meta["exits"] = {"trail": col(bars, pl.col("low").rolling_min(12)).to_numpy()}
        return sig


class SilentFamily(_Family):
    """Honest but never fires on ordinary bars (a close below zero): the audit proves nothing."""

    name: ClassVar[str] = "honest_silent"

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        c = close_of(bars)
        return from_state(c < 0)


LEAKY: tuple[type[StrategyFamily], ...] = (
    ShiftNextClose,
    NumpyRollFuture,
    TakeProfitFromFuture,
    StopFromFutureLow,
    LeakAtHighConfirm,
    LeakAtChoice,
    WarmupOnlyLeak,
    RareJumpLeak,
    SuppressBeforeDrop,
    CenteredRolling,
    FullSampleZScore,
    FullSampleMinMax,
    ReversedCumMax,
    ReversedCumMin,
    DailyFromFile,
    DailyFromPolarsFile,
    DailyFromNetwork,
    DailyCloseUnshifted,
    HiddenPolarsShift,
    HiddenGather,
    BackwardFill,
    Interpolate,
    FullRank,
    NegativePctChange,
    FullQuantile,
    ShortSideLeak,
    MetaScalarQuantile,
    WrongLength,
)
HONEST: tuple[type[StrategyFamily], ...] = (
    ShiftPrevClose,
    NumpyPrev,
    TakeProfitFromPast,
    StopFromPastLow,
    HonestConfirm,
    HonestChoice,
    HonestWarmup,
    RareJumpHonest,
    CenteredShiftedBack,
    ExpandingZScore,
    RollingMinMax,
    ReversedShiftReReversed,
    ForwardCumMax,
    ForwardCumMinStop,
    DailyCloseShifted,
    HonestPolarsShift,
    ForwardFill,
    TrailingRank,
    PositivePctChange,
    RollingQuantile,
    ShortSideHonest,
    EwmCross,
    MetaListPast,
)
SILENT = SilentFamily
