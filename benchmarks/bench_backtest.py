"""Backtest engine speed against vectorbt, measured in the same run.

1. The sma_cross grid fast 5..49 × slow 20..195 step 5 with fast < slow (1,515 combinations)
   over 5 years of hourly bars (real BTCUSDT when the shared data is present, else a seeded
   random walk of 43,800 bars): combinations per second for this engine (numba compiled and
   warmed up first) and for vectorbt ``Portfolio.from_signals`` (signals precomputed outside the
   timing, columns in chunks to bound memory), and the ratio. Targets: ≥ 40× and ≥ 5,000/s.
2. One backtest over 2.6 M generated one-minute bars: seconds and peak memory (resident-set
   growth, measured in a fresh subprocess for each engine).

Run: ``make bench-backtest`` (or ``.venv/bin/python benchmarks/bench_backtest.py``).
"""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

REAL = (
    Path(__file__).resolve().parents[2]
    / "shared/data/real/Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"
)
HOURS_5Y = 43_800
MINUTES = 2_600_000
VBT_CHUNK = 303  # vectorbt columns per call (5 chunks): bounds its bars × combos arrays
FEE = 0.001


def hourly_bars() -> tuple[pl.DataFrame, str]:
    from trading_pipeline.backtest.synthetic import random_walk_bars

    if REAL.exists():
        from trading_pipeline.market.candles import read_candle_file

        return read_candle_file(REAL).tail(HOURS_5Y), f"real BTCUSDT 1h ({REAL.name})"
    return random_walk_bars(HOURS_5Y, seed=42), "seeded random walk"


def bench_grid() -> None:
    from trading_pipeline.backtest.costs import CostModel
    from trading_pipeline.backtest.engine import run_grid
    from trading_pipeline.strategies.registry import get_family

    bars, source = hourly_bars()
    fam = get_family("sma_cross")
    grid = fam.grid(fast=range(5, 50), slow=range(20, 200, 5))
    costs = CostModel(fee=FEE, slippage_bps=0.0, fill="close")
    print(f"grid: {len(grid)} sma_cross combos × {bars.height} bars ({source})")
    run_grid(bars.head(500), fam, grid[:4], costs=costs, interval="1h")  # compile / load cache
    times = []
    for _ in range(3):
        res = run_grid(bars, fam, grid, costs=costs, interval="1h")
        times.append(res.seconds)
    ours = len(grid) / min(times)
    print(
        f"  this engine : {min(times):8.3f} s  {ours:10,.0f} combos/s (best of 3, fused={res.fused})"
    )

    import pandas as pd
    import vectorbt as vbt

    close = pd.Series(bars["close"].to_numpy())
    sigs = [fam.signals(bars, p) for p in grid]
    warm = sigs[0]
    vbt.Portfolio.from_signals(close, warm.entries, warm.exits, fees=FEE).final_value()  # compile
    t_vbt = 0.0
    finals = []
    for lo in range(0, len(grid), VBT_CHUNK):
        chunk = sigs[lo : lo + VBT_CHUNK]
        entries = pd.DataFrame(np.column_stack([s.entries for s in chunk]))
        exits = pd.DataFrame(np.column_stack([s.exits for s in chunk]))
        t0 = time.perf_counter()
        pf = vbt.Portfolio.from_signals(close, entries, exits, fees=FEE, init_cash=1000.0)
        finals.append(pf.final_value().to_numpy())
        t_vbt += time.perf_counter() - t0
        del pf, entries, exits
    theirs = len(grid) / t_vbt
    diff = np.max(np.abs(np.concatenate(finals) / res.metrics["final_equity"] - 1))
    print(f"  vectorbt    : {t_vbt:8.3f} s  {theirs:10,.0f} combos/s (from_signals, in chunks)")
    print(f"  ratio       : {ours / theirs:8.1f}×  (target ≥ 40×, and ≥ 5,000 combos/s)")
    print(f"  max relative difference of final equity vs vectorbt: {diff:.2e}")


def child(engine: str) -> None:
    """One backtest over 2.6 M one-minute bars; prints JSON with seconds and peak RSS growth."""
    from trading_pipeline.backtest.synthetic import random_walk_bars
    from trading_pipeline.strategies.registry import get_family

    bars = random_walk_bars(MINUTES, seed=7, interval="1m", vol=0.001)
    fam = get_family("sma_cross")
    params = fam.validate({"fast": 180, "slow": 400})
    if engine == "ours":
        from trading_pipeline.backtest.costs import CostModel, RiskRules
        from trading_pipeline.backtest.engine import backtest

        costs = CostModel(fee=FEE, slippage_bps=0.0, fill="close")
        risk = RiskRules(min_order_value=0.0)  # like vectorbt: no minimum order value
        backtest(bars.head(1000), fam, params, costs=costs, interval="1m")  # warm up
        base = _reset_peak()
        t0 = time.perf_counter()
        r = backtest(bars, fam, params, costs=costs, risk=risk, interval="1m")
        seconds = time.perf_counter() - t0
        final = r.metrics["final_equity"]
    else:
        import pandas as pd
        import vectorbt as vbt

        close = pd.Series(bars["close"].to_numpy())
        s = fam.signals(bars.head(1000), params)
        vbt.Portfolio.from_signals(close.head(1000), s.entries, s.exits, fees=FEE)  # warm up
        base = _reset_peak()
        t0 = time.perf_counter()
        s = fam.signals(bars, params)
        pf = vbt.Portfolio.from_signals(close, s.entries, s.exits, fees=FEE, init_cash=1000.0)
        final = float(pf.final_value())
        seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb() - base, "final": final}))


def _rss_mb() -> float:
    """Peak resident memory (MB) since the last reset; resets it (Linux clear_refs) when asked."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak() -> float:
    """Reset the peak-RSS counter (Linux ≥ 4.0) and return the current RSS in MB."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return _rss_mb()


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return _rss_mb()


def bench_minutes() -> None:
    print(f"one backtest over {MINUTES:,} one-minute bars (sma_cross 180/400, signals included):")
    out = {}
    for engine in ("ours", "vectorbt"):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", engine],
            capture_output=True,
            text=True,
            check=True,
        )
        out[engine] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = out[engine]
        label = "this engine" if engine == "ours" else "vectorbt"
        print(f"  {label:12s}: {r['seconds']:7.3f} s, peak memory growth {r['peak_mb']:8.1f} MB")
    o, v = out["ours"], out["vectorbt"]
    print(
        f"  ratio       : {v['seconds'] / o['seconds']:7.1f}× faster, "
        f"{v['peak_mb'] / max(o['peak_mb'], 0.1):.1f}× less memory; final equity "
        f"{o['final']:.4f} vs {v['final']:.4f} (relative {abs(o['final'] / v['final'] - 1):.1e})"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        bench_grid()
        bench_minutes()
