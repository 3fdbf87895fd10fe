"""The few causal indicators the strategy families need (numba, NaN until warmed up).

Every value at bar ``t`` uses only bars ``<= t``. The larger indicator library lives in
``market/``; this module stays minimal on purpose.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def prefix_sum(x: np.ndarray) -> np.ndarray:
    """``out[i] = x[0] + ... + x[i-1]`` (length ``n + 1``), for O(1) rolling means."""
    out = np.empty(x.shape[0] + 1)
    out[0] = 0.0
    acc = 0.0
    for i in range(x.shape[0]):
        acc += x[i]
        out[i + 1] = acc
    return out


@njit(cache=True)
def sma_from_prefix(csum: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average of the series whose :func:`prefix_sum` is ``csum``."""
    n = csum.shape[0] - 1
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        out[i] = (csum[i + 1] - csum[i + 1 - window]) / window
    return out


def sma(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over ``window`` bars."""
    return sma_from_prefix(prefix_sum(np.ascontiguousarray(x, dtype=np.float64)), int(window))


@njit(cache=True)
def ema(x: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average (alpha = 2 / (window + 1)) seeded with the first SMA."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n < window:
        return out
    alpha = 2.0 / (window + 1.0)
    acc = 0.0
    for i in range(window):
        acc += x[i]
    prev = acc / window
    out[window - 1] = prev
    for i in range(window, n):
        prev = alpha * x[i] + (1.0 - alpha) * prev
        out[i] = prev
    return out


@njit(cache=True)
def wilder(x: np.ndarray, window: int, start: int) -> np.ndarray:
    """Wilder smoothing (alpha = 1/window) of ``x[start:]``, seeded with the first mean."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n - start < window:
        return out
    acc = 0.0
    for i in range(start, start + window):
        acc += x[i]
    prev = acc / window
    out[start + window - 1] = prev
    for i in range(start + window, n):
        prev = (prev * (window - 1) + x[i]) / window
        out[i] = prev
    return out


def rsi(close: np.ndarray, window: int) -> np.ndarray:
    """Relative strength index with Wilder smoothing (0..100)."""
    c = np.ascontiguousarray(close, dtype=np.float64)
    diff = np.diff(c, prepend=c[0])
    gain = wilder(np.maximum(diff, 0.0), window, 1)
    loss = wilder(np.maximum(-diff, 0.0), window, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 - 100.0 / (1.0 + gain / loss)
    return np.where(loss == 0.0, np.where(gain == 0.0, 50.0, 100.0), out)


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range; the first bar uses its own high - low."""
    prev = np.concatenate([[close[0]], close[:-1]])
    return np.maximum(high - low, np.maximum(np.abs(high - prev), np.abs(low - prev)))


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Average true range (Wilder, seeded from bar 1 like TA-Lib)."""
    tr = true_range(*(np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close)))
    return wilder(tr, window, 1)


@njit(cache=True)
def rolling_max(x: np.ndarray, window: int) -> np.ndarray:
    """Highest value of the last ``window`` bars (including the current one)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        m = x[i]
        for j in range(i - window + 1, i):
            if x[j] > m:
                m = x[j]
        out[i] = m
    return out


@njit(cache=True)
def rolling_min(x: np.ndarray, window: int) -> np.ndarray:
    """Lowest value of the last ``window`` bars (including the current one)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        m = x[i]
        for j in range(i - window + 1, i):
            if x[j] < m:
                m = x[j]
        out[i] = m
    return out


@njit(cache=True)
def rolling_std(x: np.ndarray, window: int) -> np.ndarray:
    """Population standard deviation over ``window`` bars (two-pass per window, stable)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        m = 0.0
        for j in range(i - window + 1, i + 1):
            m += x[j]
        m /= window
        v = 0.0
        for j in range(i - window + 1, i + 1):
            v += (x[j] - m) ** 2
        out[i] = np.sqrt(v / window)
    return out


def shift(x: np.ndarray, k: int = 1) -> np.ndarray:
    """``x`` delayed by ``k`` bars (NaN in front)."""
    out = np.full(x.shape[0], np.nan)
    if k < x.shape[0]:
        out[k:] = x[: x.shape[0] - k]
    return out


def roc(close: np.ndarray, window: int) -> np.ndarray:
    """Rate of change over ``window`` bars, as a fraction."""
    c = np.asarray(close, dtype=np.float64)
    return c / shift(c, window) - 1.0


def cross_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where ``a`` crosses above ``b`` on this bar (both defined on this and the previous)."""
    with np.errstate(invalid="ignore"):
        now = a > b
        before = shift(a) <= shift(b)
    return now & before


def cross_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where ``a`` crosses below ``b`` on this bar."""
    with np.errstate(invalid="ignore"):
        now = a < b
        before = shift(a) >= shift(b)
    return now & before
