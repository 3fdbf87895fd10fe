"""Indicator lines shared across a grid: each distinct (kind, window, slice) computed once."""

from __future__ import annotations

import numpy as np
from numba import njit

from trading_pipeline.strategies import indicators as ind

# Line kinds of a family's compiled form. "Local" kinds depend only on the last ``window`` bars
# (or ``window + 1``), so their value at a bar is the same whatever slice they are computed on;
# the others (prefix-sum means, the sliding standard deviation, exponential and Wilder
# smoothing) depend in their last bits on where the slice starts, so a walk-forward evaluation
# computes them on the same slice as ``signals()`` does.
SMA, EMA, RSI, ATR, VOL_SMA, STD, ROC, HIGH_MAX_PREV, LOW_MIN_PREV = range(9)
LOCAL_KINDS = frozenset({ROC, HIGH_MAX_PREV, LOW_MIN_PREV})
KIND_NAMES = ("sma", "ema", "rsi", "atr", "vol_sma", "std", "roc", "high_max_prev", "low_min_prev")


@njit(cache=True, error_model="numpy")
def line_values(
    kind: int, window: int, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """One line over the given (sliced) arrays, with exactly the arithmetic of
    :mod:`~trading_pipeline.strategies.indicators` that the families' ``signals()`` use."""
    n = c.shape[0]
    if kind == SMA:
        return ind.sma_from_prefix(ind.prefix_sum(c), window)
    if kind == VOL_SMA:
        return ind.sma_from_prefix(ind.prefix_sum(v), window)
    if kind == EMA:
        return ind.ema(c, window)
    if kind == RSI:
        return ind.rsi_of(c, window)
    if kind == ATR:
        return ind.atr_of(h, lo, c, window)
    if kind == STD:
        return ind.rolling_std(c, window)
    out = np.full(n, np.nan)
    if kind == ROC:
        for i in range(window, n):
            out[i] = c[i] / c[i - window] - 1.0
    elif kind == HIGH_MAX_PREV:
        m = ind.rolling_max(h, window)
        out[1:] = m[:-1]
    elif kind == LOW_MIN_PREV:
        m = ind.rolling_min(lo, window)
        out[1:] = m[:-1]
    return out


@njit(cache=True, error_model="numpy")
def _sma_stream(x: np.ndarray, w: int, row: np.ndarray) -> None:
    """:func:`~.indicators.sma` of ``x`` into ``row`` keeping only the last ``w`` prefix sums
    (a ring), with the same sums and the same arithmetic, so the same bits."""
    m = x.shape[0]
    ring = np.zeros(w + 1)  # prefix sums csum[i+1-w .. i+1]
    acc = 0.0
    for i in range(m):
        acc += x[i]
        ring[(i + 1) % (w + 1)] = acc
        if i >= w - 1:
            row[i] = (acc - ring[(i + 1 - w) % (w + 1)]) / w
        else:
            row[i] = np.nan


@njit(cache=True, error_model="numpy")
def fill_lines(
    rows: np.ndarray,
    kinds: np.ndarray,
    windows: np.ndarray,
    ctxs: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    base: int,
    stop: int,
    out: np.ndarray,
) -> None:
    """Row ``rows[j]`` of ``out`` (bars ``[base, stop)``) gets line ``(kinds[j], windows[j])``
    computed on the slice ``[ctxs[j], stop)`` (NaN before it).

    Moving averages are written straight into their row from one prefix sum per source and
    slice start (consecutive rows share it: order rows by slice start), with the arithmetic of
    :func:`~.indicators.sma_from_prefix`."""
    csum = np.empty(0)
    sum_kind = -1
    sum_ctx = -1
    for j in range(rows.shape[0]):
        a = ctxs[j]
        r = rows[j]
        kind = kinds[j]
        out[r, : a - base] = np.nan
        if kind == SMA or kind == VOL_SMA:  # noqa: SIM109 - plain compares in numba
            w = windows[j]
            m = stop - a
            row = out[r, a - base : stop - base]
            if rows.shape[0] <= 4:  # a few lines (a long backtest): no prefix array
                _sma_stream(c[a:stop] if kind == SMA else v[a:stop], w, row)
                continue
            if kind != sum_kind or a != sum_ctx:
                csum = ind.prefix_sum(c[a:stop] if kind == SMA else v[a:stop])
                sum_kind = kind
                sum_ctx = a
            row[: min(w - 1, m)] = np.nan
            for i in range(w - 1, m):
                row[i] = (csum[i + 1] - csum[i + 1 - w]) / w
            continue
        vals = line_values(kind, windows[j], h[a:stop], lo[a:stop], c[a:stop], v[a:stop])
        out[r, a - base : stop - base] = vals
