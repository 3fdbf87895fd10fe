"""The few causal indicators the strategy families need (numba, NaN until warmed up).

Every value at bar ``t`` uses only bars ``<= t``. The larger indicator library lives in
``market/``; this module stays minimal on purpose.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# A recursive smoother (EMA, Wilder) never forgets its seed; this is how far its seed's
# influence must have decayed before its value counts as independent of the history before it.
SEED_DECAY = 1e-10


def smoothing_warmup(alpha: float, window: int, decay: float = SEED_DECAY) -> int:
    """Bars after which a recursive smoother with factor ``alpha``, seeded by the mean of its
    first ``window`` values, depends on that seed by less than ``decay`` (relative): ``window``
    + the bars ``(1 - alpha) ** k`` needs to fall below ``decay``."""
    return int(window) + math.ceil(math.log(decay) / math.log1p(-alpha))


def ema_warmup(window: int) -> int:
    """:func:`smoothing_warmup` of :func:`ema` (alpha = 2 / (window + 1))."""
    return smoothing_warmup(2.0 / (int(window) + 1.0), int(window))


def wilder_warmup(window: int) -> int:
    """:func:`smoothing_warmup` of :func:`wilder` (alpha = 1 / window), plus its first bar."""
    return smoothing_warmup(1.0 / int(window), int(window)) + 1


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


@njit(cache=True)
def rsi_of(c: np.ndarray, window: int) -> np.ndarray:
    """:func:`rsi` on contiguous float64 closes (compiled; the arithmetic of the NumPy form)."""
    n = c.shape[0]
    gain = np.empty(n)
    loss = np.empty(n)
    for i in range(n):
        d = c[i] - c[i - 1] if i > 0 else 0.0
        gain[i] = d if d > 0.0 else 0.0
        loss[i] = -d if d < 0.0 else 0.0
    g = wilder(gain, window, 1)
    lo = wilder(loss, window, 1)
    out = np.empty(n)
    for i in range(n):
        if lo[i] == 0.0:
            out[i] = 50.0 if g[i] == 0.0 else 100.0
        else:
            out[i] = 100.0 - 100.0 / (1.0 + g[i] / lo[i])
    return out


def rsi(close: np.ndarray, window: int) -> np.ndarray:
    """Relative strength index with Wilder smoothing (0..100)."""
    return rsi_of(np.ascontiguousarray(close, dtype=np.float64), int(window))


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range; the first bar uses its own high - low."""
    prev = np.concatenate([[close[0]], close[:-1]])
    return np.maximum(high - low, np.maximum(np.abs(high - prev), np.abs(low - prev)))


@njit(cache=True)
def atr_of(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """:func:`atr` on contiguous float64 arrays (compiled)."""
    n = close.shape[0]
    tr = np.empty(n)
    for i in range(n):
        prev = close[i - 1] if i > 0 else close[0]
        tr[i] = max(high[i] - low[i], max(abs(high[i] - prev), abs(low[i] - prev)))
    return wilder(tr, window, 1)


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Average true range (Wilder, seeded from bar 1 like TA-Lib)."""
    h, lo, c = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close))
    return atr_of(h, lo, c, int(window))


@njit(cache=True)
def _rolling_extreme(x: np.ndarray, window: int, sign: float) -> np.ndarray:
    """Rolling max (``sign`` 1) or min (-1) in O(n) with a monotonic queue of indices; on
    NaN-free input it equals the naive scan exactly (an extreme is one of the inputs)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    q = np.empty(n, np.int64)
    head = 0
    tail = 0
    for i in range(n):
        while tail > head and sign * x[q[tail - 1]] <= sign * x[i]:
            tail -= 1
        q[tail] = i
        tail += 1
        if q[head] <= i - window:
            head += 1
        if i >= window - 1:
            out[i] = x[q[head]]
    return out


@njit(cache=True)
def _rolling_scan(x: np.ndarray, window: int, sign: float) -> np.ndarray:
    """The naive scan (kept for inputs with NaN, whose semantics it defines)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        m = x[i]
        for j in range(i - window + 1, i):
            if sign * x[j] > sign * m:
                m = x[j]
        out[i] = m
    return out


@njit(cache=True)
def rolling_max(x: np.ndarray, window: int) -> np.ndarray:
    """Highest value of the last ``window`` bars (including the current one)."""
    if np.isnan(x).any():
        return _rolling_scan(x, window, 1.0)
    return _rolling_extreme(x, window, 1.0)


@njit(cache=True)
def rolling_min(x: np.ndarray, window: int) -> np.ndarray:
    """Lowest value of the last ``window`` bars (including the current one)."""
    if np.isnan(x).any():
        return _rolling_scan(x, window, -1.0)
    return _rolling_extreme(x, window, -1.0)


@njit(cache=True)
def _recentre(x: np.ndarray, lo: int, hi: int) -> tuple[float, float, float]:
    """The mean of ``x[lo:hi]`` and the sums of deviations and squared deviations from it."""
    c = 0.0
    for j in range(lo, hi):
        c += x[j]
    c /= hi - lo
    s1 = 0.0
    s2 = 0.0
    for j in range(lo, hi):
        d = x[j] - c
        s1 += d
        s2 += d * d
    return c, s1, s2


@njit(cache=True)
def rolling_std(x: np.ndarray, window: int) -> np.ndarray:
    """Population standard deviation over ``window`` bars, in O(n), numerically stable.

    Sums of deviations and squared deviations from a centre ``c`` slide one bar at a time
    (``var = (S2 - S1**2 / w) / w``, the corrected two-pass formula). The centre moves to the
    window's mean and the sums are recomputed from the window itself every ``window`` bars,
    when the variance has fallen below 1e-4 of the largest ``S2`` since (a volatile stretch
    leaving a quiet window: the rounding it left would show) and after a NaN or inf leaves.
    So deviations stay of the order of the spread, no large squares cancel, and the result
    stays within ~1e-12 of the two-pass value at any price level, for O(1) amortised work per
    bar. The value at a bar depends in its last bits on where the slice starts, so the fused
    path computes it on the same slice as ``signals()``."""
    n = x.shape[0]
    w = window
    out = np.full(n, np.nan)
    c = 0.0
    s1 = 0.0
    s2 = 0.0
    peak = 0.0
    for i in range(w - 1, n):
        if (i - w + 1) % w == 0 or not (np.isfinite(s1) and np.isfinite(s2)):
            c, s1, s2 = _recentre(x, i - w + 1, i + 1)
            peak = s2
        else:
            a = x[i] - c
            b = x[i - w] - c
            s1 += a - b
            s2 += (a - b) * (a + b)
            peak = max(peak, s2)
            if s2 - s1 * s1 / w < 1e-4 * peak:
                c, s1, s2 = _recentre(x, i - w + 1, i + 1)
                peak = s2
        v = (s2 - s1 * s1 / w) / w
        out[i] = np.sqrt(v) if v > 0.0 else (0.0 if v <= 0.0 else np.nan)
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
