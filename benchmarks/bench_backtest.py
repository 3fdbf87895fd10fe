"""Backtest engine speed against vectorbt, measured in the same run.

1. Every family's grid over 5 years of hourly bars (real BTCUSDT when the shared data is
   present, else a seeded random walk of 43,800 bars), each in a fresh subprocess: combinations
   per second for this engine (the fused grid: each distinct indicator line computed once, one
   compiled call; compiled and warmed up first; indicators included in the time) and for
   vectorbt ``Portfolio.from_signals`` on the same signals precomputed outside the timing
   (columns in chunks to bound memory; the family's stop-loss / take-profit passed as
   ``sl_stop``/``tp_stop``), the ratio, and each side's peak memory growth.
2. One backtest over 2.6 M generated one-minute bars: seconds and peak memory (resident-set
   growth, measured in a fresh subprocess for each engine).

The machine's load average is printed before and after: on a shared machine the absolute
figures move with it, the ratios (both engines measured in the same process) much less.
Run: ``make bench-backtest`` (or ``.venv/bin/python benchmarks/bench_backtest.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REAL = (
    Path(os.environ.get("TP_REAL_DATA", Path(__file__).resolve().parents[2] / "shared/data/real"))
    / "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"
)
HOURS_5Y = 43_800
MINUTES = 2_600_000
VBT_CELLS = 303 * HOURS_5Y  # vectorbt bars × columns per call: bounds its arrays
FEE = 0.001
GRIDS: dict[str, dict[str, Any]] = {
    "sma_cross": {"fast": range(5, 50), "slow": range(20, 200, 5)},
    "ema_cross": {"fast": range(5, 50, 2), "slow": range(20, 200, 15)},
    "macd": {"fast": range(4, 20, 2), "slow": range(20, 60, 5), "signal": [5, 8, 11, 14]},
    "momentum": {"window": range(4, 202, 2), "threshold": [0.0]},
    "rsi_reversion": {
        "window": range(6, 30, 2),
        "lower": [20, 25, 30, 35, 40],
        "upper": [60, 65, 70, 75, 80],
    },
    "donchian_breakout": {"window": range(10, 130, 10), "exit_window": range(5, 65, 5)},
    "bollinger_reversion": {"window": range(10, 60, 5), "k": [1.5, 2.0, 2.5]},
}


def hourly_bars() -> tuple[pl.DataFrame, str]:
    from trading_pipeline.backtest.synthetic import random_walk_bars

    if REAL.exists():
        from trading_pipeline.market.candles import read_candle_file

        return read_candle_file(REAL).tail(HOURS_5Y), f"real BTCUSDT 1h ({REAL.name})"
    return random_walk_bars(HOURS_5Y, seed=42), "seeded random walk"


def family_child(name: str) -> None:
    """One family's grid, this engine then vectorbt; prints JSON."""
    import pandas as pd
    import vectorbt as vbt

    from trading_pipeline.backtest.costs import CostModel
    from trading_pipeline.backtest.engine import run_grid
    from trading_pipeline.strategies.registry import get_family

    bars, _ = hourly_bars()
    fam = get_family(name)
    grid = fam.grid(**GRIDS[name])
    costs = CostModel(fee=FEE, slippage_bps=0.0, fill="close")
    run_grid(bars.head(600), fam, grid[:4], costs=costs, interval="1h")  # compile / load cache
    base = _reset_peak()
    times = []
    for _ in range(3):
        res = run_grid(bars, fam, grid, costs=costs, interval="1h")
        times.append(res.seconds)
    ours_mb = _peak_mb() - base

    close = pd.Series(bars["close"].to_numpy())
    sigs = [fam.signals(bars, p) for p in grid]
    sl = np.array([s.meta.get("stop_loss") or np.nan for s in sigs])
    tp = np.array([s.meta.get("take_profit") or np.nan for s in sigs])
    stops = not (np.isnan(sl).all() and np.isnan(tp).all())
    w = sigs[0]
    vbt.Portfolio.from_signals(close, w.entries, w.exits, fees=FEE).final_value()  # compile
    if stops:
        e2 = pd.DataFrame(np.column_stack([w.entries, w.entries]))
        x2 = pd.DataFrame(np.column_stack([w.exits, w.exits]))
        vbt.Portfolio.from_signals(
            close, e2, x2, fees=FEE, sl_stop=sl[None, :2], tp_stop=tp[None, :2]
        ).final_value()
    chunk = max(1, VBT_CELLS // bars.height)
    base = _reset_peak()
    t_vbt = 0.0
    for lo in range(0, len(grid), chunk):
        part = sigs[lo : lo + chunk]
        entries = pd.DataFrame(np.column_stack([s.entries for s in part]))
        exits = pd.DataFrame(np.column_stack([s.exits for s in part]))
        kw: dict[str, Any] = {}
        if stops:
            kw = {"sl_stop": sl[None, lo : lo + chunk], "tp_stop": tp[None, lo : lo + chunk]}
        t0 = time.perf_counter()
        pf = vbt.Portfolio.from_signals(close, entries, exits, fees=FEE, init_cash=1000.0, **kw)
        pf.final_value().to_numpy()
        t_vbt += time.perf_counter() - t0
        del pf, entries, exits
    out = {
        "combos": len(grid),
        "ours": len(grid) / min(times),
        "vbt": len(grid) / t_vbt,
        "ours_mb": ours_mb,
        "vbt_mb": _peak_mb() - base,
        "fused": res.fused,
    }
    print(json.dumps(out))


def bench_families() -> None:
    bars, source = hourly_bars()
    print(f"every family's grid × {bars.height} bars ({source}), fee {FEE}, fill at close")
    head = (
        f"  {'family':20s} {'combos':>7s} {'this engine':>13s} {'vectorbt':>11s} "
        f"{'ratio':>7s} {'peak MB (ours/vbt)':>20s}"
    )
    print(head)
    for name in GRIDS:
        proc = subprocess.run(
            [sys.executable, __file__, "--family", name],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        tag = "" if r["fused"] else " (not fused)"
        print(
            f"  {name:20s} {r['combos']:7,d} {r['ours']:11,.0f}/s {r['vbt']:9,.0f}/s "
            f"{r['ours'] / r['vbt']:6.1f}× {r['ours_mb']:9.1f} / {r['vbt_mb']:<9.1f}{tag}"
        )


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


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--family":
        family_child(sys.argv[2])
    else:
        print(f"bench-backtest: {load()} (shared machine: figures are under that load)")
        bench_families()
        bench_minutes()
        print(f"done: {load()}")
