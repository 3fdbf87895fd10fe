"""Indicators TA-Lib does not have, implemented here with numpy and numba.

Every function takes float64 arrays and returns arrays of the same length, NaN until enough
bars exist. All are causal: the value at bar ``t`` reads bars ``<= t`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import talib
from numpy.lib.stride_tricks import sliding_window_view

from trading_pipeline.market.indicators.registry import Indicator

Arrays = dict[str, np.ndarray]


def _shift(x: np.ndarray, n: int = 1) -> np.ndarray:
    out = np.full_like(x, np.nan)
    out[n:] = x[:-n]
    return out


def _roll(x: np.ndarray, n: int, fn: Callable[..., np.ndarray], **kw: Any) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if x.size >= n:
        out[n - 1 :] = fn(sliding_window_view(x, n), axis=-1, **kw)
    return out


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out[~np.isfinite(out)] = np.nan
    return out


def _range_ratio(a: np.ndarray, h: np.ndarray, low: np.ndarray) -> np.ndarray:
    rng = h - low
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(rng > 0, a / np.where(rng > 0, rng, 1.0), 0.0)
    return out


def logret(a: Arrays) -> np.ndarray:
    return np.log(a["close"] / _shift(a["close"]))


def gap(a: Arrays) -> np.ndarray:
    return a["open"] / _shift(a["close"]) - 1.0


def clv(a: Arrays) -> np.ndarray:
    h, low, c = a["high"], a["low"], a["close"]
    return _range_ratio((c - low) - (h - c), h, low)


def candle_shape(a: Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    o, h, low, c = a["open"], a["high"], a["low"], a["close"]
    return (
        _range_ratio(np.abs(c - o), h, low),
        _range_ratio(h - np.maximum(o, c), h, low),
        _range_ratio(np.minimum(o, c) - low, h, low),
    )


def drawdown(a: Arrays, timeperiod: int) -> np.ndarray:
    return a["close"] / talib.MAX(a["high"], timeperiod) - 1.0


def rv_close(a: Arrays, timeperiod: int) -> np.ndarray:
    return _roll(logret(a), timeperiod, np.std, ddof=1)


def rv_parkinson(a: Arrays, timeperiod: int) -> np.ndarray:
    x = np.log(a["high"] / a["low"]) ** 2 / (4.0 * np.log(2.0))
    return np.sqrt(talib.SMA(x, timeperiod))


def rv_garman_klass(a: Arrays, timeperiod: int) -> np.ndarray:
    x = (
        0.5 * np.log(a["high"] / a["low"]) ** 2
        - (2 * np.log(2.0) - 1) * np.log(a["close"] / a["open"]) ** 2
    )
    return np.sqrt(np.maximum(talib.SMA(x, timeperiod), 0.0))


def _rs_term(a: Arrays) -> np.ndarray:
    o, h, low, c = a["open"], a["high"], a["low"], a["close"]
    return np.log(h / c) * np.log(h / o) + np.log(low / c) * np.log(low / o)


def rv_rogers_satchell(a: Arrays, timeperiod: int) -> np.ndarray:
    return np.sqrt(np.maximum(talib.SMA(_rs_term(a), timeperiod), 0.0))


def rv_yang_zhang(a: Arrays, timeperiod: int) -> np.ndarray:
    n = timeperiod
    overnight = np.log(a["open"] / _shift(a["close"]))
    intraday = np.log(a["close"] / a["open"])
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    var = (
        _roll(overnight, n, np.var, ddof=1)
        + k * _roll(intraday, n, np.var, ddof=1)
        + (1 - k) * talib.SMA(_rs_term(a), n)
    )
    return np.sqrt(np.maximum(var, 0.0))


def ulcer(a: Arrays, timeperiod: int) -> np.ndarray:
    c = a["close"]
    pct = 100.0 * (c / talib.MAX(c, timeperiod) - 1.0)
    return np.sqrt(np.maximum(talib.SMA(pct**2, timeperiod), 0.0))


def chop(a: Arrays, timeperiod: int) -> np.ndarray:
    n = timeperiod
    tr = talib.TRANGE(a["high"], a["low"], a["close"])
    span = talib.MAX(a["high"], n) - talib.MIN(a["low"], n)
    return 100.0 * np.log10(_safe_div(talib.SUM(tr, n), span)) / np.log10(n)


def chandelier(a: Arrays, timeperiod: int, mult: float) -> tuple[np.ndarray, np.ndarray]:
    atr = talib.ATR(a["high"], a["low"], a["close"], timeperiod)
    return (
        talib.MAX(a["high"], timeperiod) - mult * atr,
        talib.MIN(a["low"], timeperiod) + mult * atr,
    )


@numba.njit(cache=True)
def _rolling_central_moments(x: np.ndarray, w: int) -> np.ndarray:  # pragma: no cover - compiled
    """Per window of ``w`` values ending at each bar: population m2, m3, m4 (two-pass, exact)."""
    out = np.full((x.size, 3), np.nan)
    for i in range(w - 1, x.size):
        m = 0.0
        for j in range(i - w + 1, i + 1):
            m += x[j]
        m /= w
        m2 = m3 = m4 = 0.0
        for j in range(i - w + 1, i + 1):
            d = x[j] - m
            d2 = d * d
            m2 += d2
            m3 += d2 * d
            m4 += d2 * d2
        out[i, 0], out[i, 1], out[i, 2] = m2 / w, m3 / w, m4 / w
    return out


def skew(a: Arrays, timeperiod: int) -> np.ndarray:
    m = _rolling_central_moments(logret(a), timeperiod)
    return _safe_div(m[:, 1], m[:, 0] ** 1.5)


def kurt(a: Arrays, timeperiod: int) -> np.ndarray:
    m = _rolling_central_moments(logret(a), timeperiod)
    return _safe_div(m[:, 2], m[:, 0] ** 2) - 3.0


def autocorr(a: Arrays, timeperiod: int) -> np.ndarray:
    r = logret(a)
    return talib.CORREL(r, _shift(r), timeperiod)


def linreg_r2(a: Arrays, timeperiod: int) -> np.ndarray:
    t = np.arange(a["close"].size, dtype=np.float64)
    return talib.CORREL(a["close"], t, timeperiod) ** 2


def zscore(a: Arrays, timeperiod: int) -> np.ndarray:
    c = a["close"]
    return _safe_div(c - talib.SMA(c, timeperiod), talib.STDDEV(c, timeperiod))


def vwap(a: Arrays, timeperiod: int) -> np.ndarray:
    tp = (a["high"] + a["low"] + a["close"]) / 3.0
    v = a["volume"]
    return _safe_div(talib.SUM(tp * v, timeperiod), talib.SUM(v, timeperiod))


def eom(a: Arrays, timeperiod: int) -> np.ndarray:
    mid = (a["high"] + a["low"]) / 2.0
    move = mid - _shift(mid)
    emv = _safe_div(move * (a["high"] - a["low"]), a["volume"])
    emv[0] = np.nan
    return talib.SMA(np.nan_to_num(emv, nan=0.0), timeperiod) if emv.size else emv


def amihud(a: Arrays, timeperiod: int) -> np.ndarray:
    illiq = _safe_div(np.abs(logret(a)), a["close"] * a["volume"])
    illiq[0] = 0.0
    return talib.SMA(np.nan_to_num(illiq, nan=0.0), timeperiod)


def kvo(
    a: Arrays, fastperiod: int, slowperiod: int, signalperiod: int
) -> tuple[np.ndarray, np.ndarray]:
    tp = (a["high"] + a["low"] + a["close"]) / 3.0
    sv = a["volume"] * np.where(tp > _shift(tp), 1.0, -1.0)
    sv[0] = np.nan
    k = talib.EMA(sv, fastperiod) - talib.EMA(sv, slowperiod)
    return k, talib.EMA(k, signalperiod)


def kst(a: Arrays) -> tuple[np.ndarray, np.ndarray]:
    c = a["close"]
    parts = [(10, 10, 1), (15, 10, 2), (20, 10, 3), (30, 15, 4)]
    k = sum(w * talib.SMA(talib.ROC(c, r), s) for r, s, w in parts)
    k = np.asarray(k, dtype=np.float64)
    return k, talib.SMA(k, 9)


@numba.njit(cache=True)
def _fisher(x: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    out = np.full(x.size, np.nan)
    v = 0.0
    f = 0.0
    started = False
    for i in range(x.size):
        if np.isnan(x[i]):
            continue
        v = 0.66 * (x[i] - 0.5) + 0.67 * v if started else 0.66 * (x[i] - 0.5)
        v = min(max(v, -0.999), 0.999)
        f = 0.5 * np.log((1 + v) / (1 - v)) + (0.5 * f if started else 0.0)
        started = True
        out[i] = f
    return out


def fisher(a: Arrays, timeperiod: int) -> np.ndarray:
    mid = (a["high"] + a["low"]) / 2.0
    lo, hi = talib.MIN(mid, timeperiod), talib.MAX(mid, timeperiod)
    x = np.where(hi > lo, (mid - lo) / np.where(hi > lo, hi - lo, 1.0), 0.5)
    x[np.isnan(lo)] = np.nan
    return _fisher(x)


def _sym4(x: np.ndarray) -> np.ndarray:
    return (x + 2 * _shift(x, 1) + 2 * _shift(x, 2) + _shift(x, 3)) / 6.0


def rvgi(a: Arrays, timeperiod: int) -> tuple[np.ndarray, np.ndarray]:
    num = _sym4(a["close"] - a["open"])
    den = _sym4(a["high"] - a["low"])
    r = _safe_div(talib.SUM(num, timeperiod), talib.SUM(den, timeperiod))
    return r, _sym4(r)


@numba.njit(cache=True)
def _streak(c: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    out = np.zeros(c.size)
    for i in range(1, c.size):
        if c[i] > c[i - 1]:
            out[i] = out[i - 1] + 1 if out[i - 1] > 0 else 1
        elif c[i] < c[i - 1]:
            out[i] = out[i - 1] - 1 if out[i - 1] < 0 else -1
    return out


def _percent_rank(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if x.size > n:
        w = sliding_window_view(x, n + 1)
        rank = 100.0 * (w[:, :-1] < w[:, -1:]).sum(axis=-1) / n
        out[n:] = np.where(np.isnan(w).any(axis=-1), np.nan, rank)
    return out


def crsi(a: Arrays) -> np.ndarray:
    """Connors RSI: (RSI(3) + RSI(streak, 2) + percent rank of the 1-bar return over 100) / 3."""
    c = a["close"]
    roc1 = talib.ROC(c, 1)
    return (talib.RSI(c, 3) + talib.RSI(_streak(c), 2) + _percent_rank(roc1, 100)) / 3.0


FUNCS: dict[str, Callable[..., Any]] = {
    "logret": logret,
    "gap": gap,
    "clv": clv,
    "candle_shape": candle_shape,
    "drawdown": drawdown,
    "rv_close": rv_close,
    "rv_parkinson": rv_parkinson,
    "rv_garman_klass": rv_garman_klass,
    "rv_rogers_satchell": rv_rogers_satchell,
    "rv_yang_zhang": rv_yang_zhang,
    "ulcer": ulcer,
    "chop": chop,
    "chandelier": chandelier,
    "skew": skew,
    "kurt": kurt,
    "autocorr": autocorr,
    "linreg_r2": linreg_r2,
    "zscore": zscore,
    "vwap": vwap,
    "eom": eom,
    "amihud": amihud,
    "kvo": kvo,
    "kst": kst,
    "fisher": fisher,
    "rvgi": rvgi,
    "crsi": crsi,
}


def compute(ind: Indicator, arrays: Arrays) -> dict[str, np.ndarray]:
    """The columns ``ind`` contributes, keyed by column name."""
    result = FUNCS[ind.func](arrays, **ind.params)
    values = result if isinstance(result, tuple) else (result,)
    return {
        col: np.asarray(v, dtype=np.float64) for col, v in zip(ind.columns, values, strict=True)
    }
