"""Every indicator output against a reference: TA-Lib called directly, or a plain-Python loop.

Runs on a seeded synthetic frame always, and on real BTC hourly bars when the real-data folder
exists. Also: the honest count, no lookahead under truncation, and the warm-up declaration.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import talib

from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.market.indicators import (
    REGISTRY,
    compute_features,
    count_by_family,
    feature_names,
    warmup_bars,
)
from trading_pipeline.market.indicators.talib_backend import input_columns
from trading_pipeline.regimes.synthetic import synthetic_bars

ROSHAN_BTC = "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"


@pytest.fixture(scope="module")
def synthetic() -> pl.DataFrame:
    return synthetic_bars((("bull", 900), ("bear_highvol", 600), ("sideways", 500)), seed=3)


@pytest.fixture(scope="module")
def real_btc(real_data: Path) -> pl.DataFrame:
    # 2,000 bars around the 2021 top: fast enough for the plain-Python references.
    df = read_candle_file(real_data / ROSHAN_BTC)
    return df.filter(pl.col("open_time").dt.year() == 2021).slice(6000, 2000)


def _arr(df: pl.DataFrame, c: str) -> np.ndarray:
    return df.get_column(c).cast(pl.Float64).to_numpy()


def _close(actual: np.ndarray, expected: np.ndarray, name: str) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), f"{name}: NaN positions differ"
    mask = ~np.isnan(expected)
    assert mask.sum() > 0, f"{name}: no values"
    np.testing.assert_allclose(actual[mask], expected[mask], rtol=1e-9, atol=1e-9, err_msg=name)


# ---------------------------------------------------------------- TA-Lib-backed outputs


def _talib_reference(df: pl.DataFrame, name: str) -> dict[str, np.ndarray]:
    ind = REGISTRY[name]
    out = getattr(talib, ind.func)(*(_arr(df, c) for c in input_columns(ind.func)), **ind.params)
    if ind.family == "pattern":
        values = np.asarray(out, dtype=np.float64)
        values[: ind.lookback] = np.nan
        return {ind.columns[0]: values}
    if not isinstance(out, tuple):
        out = (out,)
    all_names = talib.abstract.Function(ind.func).info["output_names"]
    by_name = dict(zip(all_names, out, strict=True))
    ref = {}
    for o, col in zip(ind.outputs, ind.columns, strict=True):
        v = np.asarray(by_name[o], dtype=np.float64)
        if ind.transform:  # the start-independent change of a cumulative line
            n = ind.transform_period
            prev = np.concatenate([np.full(n, np.nan), v[:-n]])
            v = v - prev if ind.transform == "diff" else v / prev
        ref[col] = v
    return ref


TALIB_NAMES = [n for n, i in REGISTRY.items() if i.backend == "talib"]
NATIVE_NAMES = [n for n, i in REGISTRY.items() if i.backend == "native"]


@pytest.mark.parametrize("frame", ["synthetic", "real_btc"])
def test_talib_outputs_equal_talib(frame: str, request: pytest.FixtureRequest) -> None:
    df = request.getfixturevalue(frame)
    feats = compute_features(df, indicators=TALIB_NAMES)
    for name in TALIB_NAMES:
        for col, expected in _talib_reference(df, name).items():
            actual = feats.get_column(col).fill_null(np.nan).to_numpy()
            _close(actual, expected, f"{frame}:{col}")


# ---------------------------------------------------------------- native outputs vs loops


def _loop_refs(df: pl.DataFrame) -> dict[str, np.ndarray]:  # noqa: C901 - one reference per output
    o, h, lo, c, v = (list(_arr(df, k)) for k in ("open", "high", "low", "close", "volume"))
    n = len(c)
    nan = math.nan
    ref: dict[str, list[float]] = {}

    def win(x: list[float], i: int, p: int) -> list[float]:
        return x[i - p + 1 : i + 1] if i - p + 1 >= 0 else []

    def mean(x: list[float]) -> float:
        return sum(x) / len(x)

    def std(x: list[float], ddof: int) -> float:
        m = mean(x)
        return math.sqrt(sum((a - m) ** 2 for a in x) / (len(x) - ddof))

    r = [nan] + [math.log(c[i] / c[i - 1]) for i in range(1, n)]
    ref["logret"] = r
    ref["gap"] = [nan] + [o[i] / c[i - 1] - 1 for i in range(1, n)]
    rng = [h[i] - lo[i] for i in range(n)]
    ref["clv"] = [((c[i] - lo[i]) - (h[i] - c[i])) / rng[i] if rng[i] else 0.0 for i in range(n)]
    ref["candle_shape_body"] = [abs(c[i] - o[i]) / rng[i] if rng[i] else 0.0 for i in range(n)]
    ref["candle_shape_upper_wick"] = [
        (h[i] - max(o[i], c[i])) / rng[i] if rng[i] else 0.0 for i in range(n)
    ]
    ref["candle_shape_lower_wick"] = [
        (min(o[i], c[i]) - lo[i]) / rng[i] if rng[i] else 0.0 for i in range(n)
    ]
    ref["drawdown"] = [c[i] / max(win(h, i, 720)) - 1 if i >= 719 else nan for i in range(n)]
    p = 24
    ref["rv_close"] = [std(win(r, i, p), 1) if i >= p else nan for i in range(n)]
    hl2 = [math.log(h[i] / lo[i]) ** 2 for i in range(n)]
    co2 = [math.log(c[i] / o[i]) ** 2 for i in range(n)]
    rs = [
        math.log(h[i] / c[i]) * math.log(h[i] / o[i])
        + math.log(lo[i] / c[i]) * math.log(lo[i] / o[i])
        for i in range(n)
    ]
    ref["rv_parkinson"] = [
        math.sqrt(mean(win(hl2, i, p)) / (4 * math.log(2))) if i >= p - 1 else nan for i in range(n)
    ]
    gk = [0.5 * hl2[i] - (2 * math.log(2) - 1) * co2[i] for i in range(n)]
    ref["rv_garman_klass"] = [
        math.sqrt(max(mean(win(gk, i, p)), 0)) if i >= p - 1 else nan for i in range(n)
    ]
    ref["rv_rogers_satchell"] = [
        math.sqrt(max(mean(win(rs, i, p)), 0)) if i >= p - 1 else nan for i in range(n)
    ]
    ov = [nan] + [math.log(o[i] / c[i - 1]) for i in range(1, n)]
    intra = [math.log(c[i] / o[i]) for i in range(n)]
    k = 0.34 / (1.34 + (p + 1) / (p - 1))
    ref["rv_yang_zhang"] = [
        math.sqrt(
            std(win(ov, i, p), 1) ** 2
            + k * std(win(intra, i, p), 1) ** 2
            + (1 - k) * mean(win(rs, i, p))
        )
        if i >= p
        else nan
        for i in range(n)
    ]
    q = 14
    pct = [100 * (c[i] / max(win(c, i, q)) - 1) if i >= q - 1 else nan for i in range(n)]
    ref["ulcer"] = [
        math.sqrt(mean([x * x for x in win(pct, i, q)])) if i >= 2 * q - 2 else nan
        for i in range(n)
    ]
    tr = [nan] + [max(h[i], c[i - 1]) - min(lo[i], c[i - 1]) for i in range(1, n)]
    ref["chop"] = [
        100
        * math.log10(sum(win(tr, i, q)) / (max(win(h, i, q)) - min(win(lo, i, q))))
        / math.log10(q)
        if i >= q
        else nan
        for i in range(n)
    ]
    # Wilder ATR(22), seeded with the mean true range of bars 1..22 (TA-Lib's convention).
    a = 22
    atr = [nan] * n
    atr[a] = mean(tr[1 : a + 1])
    for i in range(a + 1, n):
        atr[i] = (atr[i - 1] * (a - 1) + tr[i]) / a
    ref["chandelier_long"] = [max(win(h, i, a)) - 3 * atr[i] if i >= a else nan for i in range(n)]
    ref["chandelier_short"] = [min(win(lo, i, a)) + 3 * atr[i] if i >= a else nan for i in range(n)]
    w = 72

    def moments(x: list[float]) -> tuple[float, float, float]:
        m = mean(x)
        m2, m3, m4 = (sum((e - m) ** k for e in x) / len(x) for k in (2, 3, 4))
        return m2, m3, m4

    sk, ku = [nan] * n, [nan] * n
    for i in range(w, n):
        m2, m3, m4 = moments(win(r, i, w))
        sk[i], ku[i] = m3 / m2**1.5, m4 / m2**2 - 3
    ref["skew"], ref["kurt"] = sk, ku

    def corr(x: list[float], y: list[float]) -> float:
        mx, my = mean(x), mean(y)
        cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
        vx = sum((a - mx) ** 2 for a in x)
        vy = sum((b - my) ** 2 for b in y)
        return cov / math.sqrt(vx * vy)

    ref["autocorr"] = [
        corr(win(r, i, w), win(r, i - 1, w)) if i >= w + 1 else nan for i in range(n)
    ]
    ref["linreg_r2"] = [
        corr(win(c, i, q), list(range(q))) ** 2 if i >= q - 1 else nan for i in range(n)
    ]
    z = 20
    ref["zscore"] = [
        (c[i] - mean(win(c, i, z))) / std(win(c, i, z), 0) if i >= z - 1 else nan for i in range(n)
    ]
    tp = [(h[i] + lo[i] + c[i]) / 3 for i in range(n)]
    tpv = [tp[i] * v[i] for i in range(n)]
    ref["vwap"] = [sum(win(tpv, i, 24)) / sum(win(v, i, 24)) if i >= 23 else nan for i in range(n)]
    mid = [(h[i] + lo[i]) / 2 for i in range(n)]
    emv = [0.0] + [(mid[i] - mid[i - 1]) * rng[i] / v[i] if v[i] else 0.0 for i in range(1, n)]
    ref["eom"] = [mean(win(emv, i, q)) if i >= q - 1 else nan for i in range(n)]
    ill = [0.0] + [abs(r[i]) / (c[i] * v[i]) if v[i] else 0.0 for i in range(1, n)]
    ref["amihud"] = [mean(win(ill, i, 24)) if i >= 23 else nan for i in range(n)]

    def ema(x: list[float], period: int) -> list[float]:
        # TA-Lib's EMA: seeded with the SMA of the first ``period`` defined values.
        out = [nan] * len(x)
        first = next(j for j, e in enumerate(x) if not math.isnan(e))
        if first + period > len(x):
            return out
        out[first + period - 1] = mean(x[first : first + period])
        alpha = 2 / (period + 1)
        for j in range(first + period, len(x)):
            out[j] = out[j - 1] + alpha * (x[j] - out[j - 1])
        return out

    sv = [nan] + [v[i] * (1 if tp[i] > tp[i - 1] else -1) for i in range(1, n)]
    fast, slow = ema(sv, 34), ema(sv, 55)
    kv = [f - s for f, s in zip(fast, slow, strict=True)]
    ref["kvo_kvo"], ref["kvo_signal"] = kv, ema(kv, 13)

    def roc(x: list[float], period: int) -> list[float]:
        return [nan] * period + [100 * (x[i] / x[i - period] - 1) for i in range(period, len(x))]

    def sma(x: list[float], period: int) -> list[float]:
        return [mean(win(x, i, period)) if i >= period - 1 else nan for i in range(len(x))]

    parts = [(10, 10, 1), (15, 10, 2), (20, 10, 3), (30, 15, 4)]
    kst = [0.0] * n
    for rp, sp, wt in parts:
        kst = [a + wt * b for a, b in zip(kst, sma(roc(c, rp), sp), strict=True)]
    ref["kst_kst"], ref["kst_signal"] = kst, sma(kst, 9)
    fp = 10
    fish = [nan] * n
    val = f = 0.0
    for i in range(fp - 1, n):
        window = win(mid, i, fp)
        lo_m, hi_m = min(window), max(window)
        x = (mid[i] - lo_m) / (hi_m - lo_m) if hi_m > lo_m else 0.5
        first = i == fp - 1
        val = 0.66 * (x - 0.5) + (0 if first else 0.67 * val)
        val = min(max(val, -0.999), 0.999)
        f = 0.5 * math.log((1 + val) / (1 - val)) + (0 if first else 0.5 * f)
        fish[i] = f
    ref["fisher"] = fish

    def sym4(x: list[float]) -> list[float]:
        return [nan] * 3 + [
            (x[i] + 2 * x[i - 1] + 2 * x[i - 2] + x[i - 3]) / 6 for i in range(3, len(x))
        ]

    num, den = sym4([c[i] - o[i] for i in range(n)]), sym4(rng)
    rv = [sum(win(num, i, 10)) / sum(win(den, i, 10)) if i >= 12 else nan for i in range(n)]
    ref["rvgi_rvgi"], ref["rvgi_signal"] = rv, sym4(rv)
    streak = [0.0] * n
    for i in range(1, n):
        if c[i] > c[i - 1]:
            streak[i] = streak[i - 1] + 1 if streak[i - 1] > 0 else 1
        elif c[i] < c[i - 1]:
            streak[i] = streak[i - 1] - 1 if streak[i - 1] < 0 else -1
    r1 = roc(c, 1)
    prank = [
        100 * sum(1 for x in r1[i - 100 : i] if x < r1[i]) / 100 if i >= 101 else nan
        for i in range(n)
    ]
    rsi3, rsis = talib.RSI(np.array(c), 3), talib.RSI(np.array(streak), 2)
    ref["crsi"] = [(rsi3[i] + rsis[i] + prank[i]) / 3 for i in range(n)]
    return {k: np.asarray(x, dtype=np.float64) for k, x in ref.items()}


@pytest.mark.parametrize("frame", ["synthetic", "real_btc"])
def test_native_outputs_equal_plain_loops(frame: str, request: pytest.FixtureRequest) -> None:
    df = request.getfixturevalue(frame)
    feats = compute_features(df, indicators=NATIVE_NAMES)
    refs = _loop_refs(df)
    native_cols = [c for n in NATIVE_NAMES for c in REGISTRY[n].columns]
    assert sorted(refs) == sorted(native_cols), "every native output has a reference"
    for col in native_cols:
        _close(feats.get_column(col).fill_null(np.nan).to_numpy(), refs[col], f"{frame}:{col}")


# ---------------------------------------------------------------- count, warm-up, causality


def test_at_least_200_distinct_outputs_no_duplicates() -> None:
    names = feature_names()
    by_family = count_by_family()
    print(f"\n{len(names)} distinct indicator outputs: {by_family}")
    assert len(names) == len(set(names)) >= 200
    assert sum(by_family.values()) == len(names)
    for family in ("trend", "momentum", "volatility", "volume", "price_transform"):
        assert by_family[family] >= 10, family
    # No column is a copy or a rescaling of another one (correlation 1 on the same frame).
    feats = compute_features(synthetic_bars()).drop("open_time").slice(warmup_bars(), None)
    cont = [c for c in feats.columns if REGISTRY_FAMILY[c] != "pattern"]
    mat = feats.select(cont).fill_null(0.0).to_numpy()
    std = mat.std(axis=0)
    assert (std > 0).all(), [c for c, s in zip(cont, std, strict=True) if s == 0]
    corr = np.corrcoef(mat, rowvar=False)
    np.fill_diagonal(corr, 0.0)
    i, j = np.unravel_index(np.nanargmax(np.abs(corr)), corr.shape)
    assert abs(corr[i, j]) < 1 - 1e-9, f"{cont[i]} duplicates {cont[j]}"


REGISTRY_FAMILY = {c: ind.family for ind in REGISTRY.values() for c in ind.columns}


def test_warmup_covers_every_lookback() -> None:
    assert warmup_bars() == max(i.warmup for i in REGISTRY.values())
    assert warmup_bars(["sma"]) == REGISTRY["sma"].lookback == 19
    assert warmup_bars(["obv"]) == 24  # its 24-bar change needs 24 bars
    with pytest.raises(KeyError):
        warmup_bars(["no_such_indicator"])


@pytest.mark.parametrize("frame", ["synthetic", "real_btc"])
def test_no_lookahead_on_truncation(frame: str, request: pytest.FixtureRequest) -> None:
    df = request.getfixturevalue(frame)
    full = compute_features(df)
    for cut in (50, 333, 1001, 1500, 1999):
        part = compute_features(df.head(cut))
        assert part.height == cut
        for col in part.columns[1:]:
            a = part.get_column(col).fill_null(np.nan).to_numpy()
            b = full.get_column(col).head(cut).fill_null(np.nan).to_numpy()
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{col}@{cut}")


def test_requires_sorted_ohlcv(synthetic: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="sorted"):
        compute_features(synthetic.reverse())
    with pytest.raises(ValueError, match="lack"):
        compute_features(synthetic.drop("volume"))
