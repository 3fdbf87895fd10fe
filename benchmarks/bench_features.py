"""Benchmark: every indicator output for 5 years of hourly bars × 3 symbols, against TA-Lib
called column by column on numpy arrays in the same run.

Data: the real Roshan BTC/ETH and wuTribe BNB hourly feathers under ``../shared/data/real``
(last 5 years of each, BNB has 4.8) when present, else seeded synthetic bars (43,800 each).

Timed, best of ``--repeat``, alternating:

* ``compute_features`` with every registered output (TA-Lib-backed and native) → a polars frame,
* ``compute_features`` restricted to the TA-Lib-backed outputs (like for like with the anchor),
* the anchor: each TA-Lib function called directly on float64 numpy arrays, no frame built.

Also printed: one month recomputed with its warm-up (what a new monthly partition costs), and
``compute_features`` on the last 5,000 bars and ``current_regime`` (rules labeller, 400 days of
hourly bars) latency, p50/p99 (what the 5-minute decision loop pays).

    .venv/bin/python benchmarks/bench_features.py [--repeat 3] [--synthetic]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import talib

from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.market.features import month_features
from trading_pipeline.market.indicators import (
    REGISTRY,
    compute_features,
    count_by_family,
    feature_names,
    ohlcv_arrays,
)
from trading_pipeline.market.indicators.talib_backend import input_columns
from trading_pipeline.regimes import current_regime, get_labeller
from trading_pipeline.regimes.synthetic import synthetic_bars

REAL = Path(
    os.environ.get("TP_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real")
)
FILES = {
    "BTCUSDT": "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather",
    "ETHUSDT": "Roshan7869-algotrading/freqtrade_binance_spot_1h/ETH_USDT-1h.feather",
    "BNBUSDT": "wuTribe-freqtrade/freqtrade_binance_spot_1h/BNB_USDT-1h.feather",
}
FIVE_YEARS = 5 * 365 * 24


def load(synthetic: bool) -> tuple[dict[str, pl.DataFrame], str]:
    if not synthetic and all((REAL / f).exists() for f in FILES.values()):
        return {s: read_candle_file(REAL / f).tail(FIVE_YEARS) for s, f in FILES.items()}, "real"
    out = {}
    for i, sym in enumerate(FILES):
        script = (
            ("bull", FIVE_YEARS // 3),
            ("bear", FIVE_YEARS // 3),
            ("sideways", FIVE_YEARS // 3),
        )
        out[sym] = synthetic_bars(script, seed=100 + i)
    return out, "synthetic"


def talib_anchor(bars: pl.DataFrame) -> int:
    """Every TA-Lib-backed registry function, called directly; returns the outputs produced."""
    arrays = ohlcv_arrays(bars)
    produced = 0
    for ind in REGISTRY.values():
        if ind.backend != "talib":
            continue
        fn = getattr(talib, ind.func)
        out = fn(*(arrays[c] for c in input_columns(ind.func)), **ind.params)
        produced += len(out) if isinstance(out, tuple) else 1
    return produced


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--synthetic", action="store_true", help="ignore the real data")
    args = ap.parse_args()

    data, kind = load(args.synthetic)
    rows = sum(df.height for df in data.values())
    talib_names = [n for n, i in REGISTRY.items() if i.backend == "talib"]
    n_all, n_talib = len(feature_names()), len(feature_names(talib_names))
    print(f"data: {kind}, {len(data)} symbols, {rows:,} hourly bars ({rows / len(data):,.0f} each)")
    print(f"outputs: {n_all} distinct ({n_talib} TA-Lib-backed); by family {count_by_family()}")

    compute_features(next(iter(data.values())).head(5000))  # compile the numba kernels once
    t_all = t_tl = t_anchor = float("inf")
    for _ in range(args.repeat):  # alternate so machine load hits all three alike
        t_anchor = min(t_anchor, best(lambda: [talib_anchor(df) for df in data.values()], 1))
        t_tl = min(
            t_tl,
            best(lambda: [compute_features(df, indicators=talib_names) for df in data.values()], 1),
        )
        t_all = min(t_all, best(lambda: [compute_features(df) for df in data.values()], 1))

    print(f"\n{'':48}{'seconds':>9}{'outputs/s':>14}")
    print(
        f"{'TA-Lib column by column (anchor, numpy only)':48}{t_anchor:9.3f}"
        f"{n_talib * len(data) / t_anchor:14,.0f}"
    )
    print(
        f"{'compute_features, TA-Lib-backed outputs':48}{t_tl:9.3f}"
        f"{n_talib * len(data) / t_tl:14,.0f}   ratio {t_tl / t_anchor:.2f}x anchor"
    )
    print(
        f"{'compute_features, all outputs (+ native)':48}{t_all:9.3f}"
        f"{n_all * len(data) / t_all:14,.0f}   ratio {t_all / t_anchor:.2f}x anchor"
    )

    btc = data["BTCUSDT"]
    last = btc["open_time"][-1]
    y, m = (last.year, last.month - 1) if last.month > 1 else (last.year - 1, 12)
    t_month = best(lambda: month_features(btc, y, m), args.repeat)
    print(
        f"\none month ({y}-{m:02d}) with its warm-up, BTC: {t_month:.3f} s "
        f"({t_month / (t_all / len(data)):.1%} of the whole 5-year series)"
    )

    tail = btc.tail(5000)
    lat_f = []
    for _ in range(50):
        t = time.perf_counter()
        compute_features(tail)
        lat_f.append(time.perf_counter() - t)
    f50, f99 = np.percentile(np.array(lat_f) * 1000, [50, 99])
    print(f"compute_features, all outputs, last 5,000 bars: p50 {f50:.1f} ms, p99 {f99:.1f} ms")

    lab = get_labeller("rules")
    lat = []
    for i in range(200):
        t = time.perf_counter()
        current_regime(btc.head(btc.height - i), lab)
        lat.append(time.perf_counter() - t)
    p50, p99 = np.percentile(np.array(lat) * 1000, [50, 99])
    print(f"current_regime (rules, hourly): p50 {p50:.1f} ms, p99 {p99:.1f} ms over 200 calls")


if __name__ == "__main__":
    main()
