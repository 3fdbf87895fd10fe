"""Portfolio families on real hourly BTC/ETH/BNB: out of sample, deflated, beside buy-and-hold.

For every portfolio family of the registry (cross-sectional momentum rotation, volatility
targeting, trend filter with inverse-volatility weights): discovery's own path on the universe
frame (the coins' hourly bars joined on open time, series ``universe-BTC+ETH+BNB-1h``) — the
lookahead gate, a seeded Optuna walk-forward study (4 folds, a fixed number of TPE trials per
fold, in-memory storage), then the out-of-sample result: ONE continuous account over the
concatenated test windows (holdings carried over the fold boundaries, parameters switched
there, 0.1 % fee + 2 bps slippage per order). Printed per family: OOS Sharpe, total return, max
drawdown, the deflated Sharpe probability over the family's own trials and over EVERY trial of
every portfolio family on the universe (the ranking's figure), PBO, the number of trials,
turnover, exposure and the ranking verdict; beside them, over the same out-of-sample bars and
costs, buy-and-hold of each coin, the equal-weight basket bought once and NOT rebalanced, and
(for reference) the equal-weight basket rebalanced every 30 days.

Data (``TP_REAL_DATA``, else the first ``shared/data/real`` above this checkout): BTC and ETH
``Roshan7869-algotrading/freqtrade_binance_spot_1h`` (2018-01 → 2026-05); BNB
``djienne-3EMA_SRSI_ATR`` (json, to 2022-10) spliced with ``wuTribe-freqtrade`` (feather,
2020-01 → 2024-11; it wins where both have a bar). With BNB the universe ends 2024-11-03;
``--coins BTC,ETH`` runs 2018 → 2026. Without the data the report says so and exits 0.
This is a measurement, not a test. Run: ``make report-portfolio`` (or
``.venv/bin/python benchmarks/portfolio_real.py [--trials N] [--coins BTC,ETH,BNB]``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from oos_continuous_real import real_dir  # noqa: E402  (one rule for finding the real data)

FILES: dict[str, tuple[str, ...]] = {
    "BTC": ("Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather",),
    "ETH": ("Roshan7869-algotrading/freqtrade_binance_spot_1h/ETH_USDT-1h.feather",),
    # older first: a later file's bar replaces an earlier one's at the same open time
    "BNB": (
        "djienne-3EMA_SRSI_ATR/freqtrade_binance_spot/BNB_USDT-1h.json",
        "wuTribe-freqtrade/freqtrade_binance_spot_1h/BNB_USDT-1h.feather",
    ),
}
REBALANCED_EVERY = 24 * 30


def load_coin(base: Path, coin: str) -> tuple[pl.DataFrame, str]:
    """One coin's hourly bars (spliced when several files hold it) and a note on the splice."""
    from trading_pipeline.market.candles import read_candle_file  # lazy: after the data check

    cols = ["open_time", "open", "high", "low", "close", "volume"]
    parts = [read_candle_file(base / rel).select(cols) for rel in FILES[coin]]
    if len(parts) == 1:
        return parts[0], ""
    both = parts[0].join(parts[1], on="open_time", how="inner", suffix="_b")
    same = int((both["close"] == both["close_b"]).sum())
    note = f"{coin}: {both.height} overlapping bars, {same} identical closes"
    merged = pl.concat(parts).unique("open_time", keep="last").sort("open_time")
    return merged, note


def bad_arguments(args: argparse.Namespace, coins: list[str]) -> str:
    """What is wrong with the command line ("" when nothing)."""
    if args.trials < 1 or args.folds < 1:
        return "--trials and --folds must be >= 1"
    if len(coins) < 2 or any(c not in FILES for c in coins) or len(set(coins)) != len(coins):
        return f"--coins must be two or more of {', '.join(FILES)}"
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100, help="TPE trials per fold (default 100)")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--coins", default="BTC,ETH,BNB", help="comma-separated, from BTC,ETH,BNB")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--family", action="append", help="only these families (repeatable)")
    ap.add_argument("--json", action="store_true", help="one JSON object at the end, no table")
    args = ap.parse_args(argv)
    coins = [c.strip().upper() for c in args.coins.split(",") if c.strip()]
    bad = bad_arguments(args, coins)
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    base = real_dir()
    missing = [rel for c in coins for rel in FILES[c] if base is None or not (base / rel).exists()]
    if base is None or missing:
        print(
            f"error: real hourly data absent ({missing[0] if missing else 'no shared/data/real'}); "
            "no report",
            file=sys.stderr,
        )
        return 2

    # lazy: the skip above needs none of these (optuna, numba kernels)
    import optuna

    from trading_pipeline.backtest.costs import CostModel
    from trading_pipeline.backtest.portfolio import BASKET, simulate
    from trading_pipeline.discovery.portfolio_eval import PortfolioEvaluator
    from trading_pipeline.discovery.portfolio_study import oos_benchmarks, tune_universe
    from trading_pipeline.discovery.ranking import rank
    from trading_pipeline.discovery.tuning import WalkForward
    from trading_pipeline.strategies.registry import PORTFOLIO_FAMILIES
    from trading_pipeline.strategies.universe import universe_frame, universe_key

    names = list(PORTFOLIO_FAMILIES)
    if args.family:
        unknown = sorted(set(args.family) - set(names))
        if unknown:
            print(
                f"error: unknown family {unknown[0]!r}; known: {', '.join(names)}", file=sys.stderr
            )
            return 2
        names = [n for n in names if n in args.family]
    series: dict[str, pl.DataFrame] = {}
    notes = []
    for coin in coins:
        series[coin], note = load_coin(base, coin)
        if note:
            notes.append(note)
    frame = universe_frame(series)
    key = universe_key(coins, "1h")
    walk = WalkForward(folds=args.folds)
    costs = CostModel()
    folds = walk.split(frame.height)
    first, last = folds[0].test_start, folds[-1].test_stop
    t = frame["open_time"]
    head = (
        f"{key}: {frame.height} bars {t[0]} → {t[-1]} (coins joined on open time"
        f"{'; ' + '; '.join(notes) if notes else ''}); {args.folds} folds, out of sample "
        f"{t[first]} → {t[last - 1]} ({last - first} bars); {args.trials} TPE trials per fold, "
        f"seed {args.seed}; fee {costs.fee:.1%} + {costs.slippage_bps:g} bps slippage per order"
    )
    if not args.json:
        print(head, flush=True)
    results = []
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        storage = optuna.storages.InMemoryStorage()
        res = tune_universe(
            frame,
            PORTFOLIO_FAMILIES[name],
            series=key,
            interval="1h",
            storage=storage,
            n_trials=args.trials,
            walk=walk,
            costs=costs,
            seed=args.seed,
        )
        results.append(res)
        seconds[name] = round(time.perf_counter() - t0, 1)
        if not args.json:
            print(f"  {name}: {seconds[name]} s", flush=True)
    table = rank(results)  # deflated over every trial of every portfolio family on the universe
    by_name = {row["strategy"]: row for row in table.iter_rows(named=True)}
    rows: list[dict[str, Any]] = []
    for res in results:
        row = by_name[res.spec.family]
        m = res.metrics
        rows.append(
            {
                "name": res.spec.family,
                "oos_sharpe": m["sharpe"],
                "oos_return": m["total_return"],
                "oos_max_drawdown": m["max_drawdown"],
                "dsr_family": res.dsr.probability,
                "dsr_series": row["dsr_probability"],
                "pbo": None if res.pbo is None else res.pbo.pbo,
                "n_trials": res.n_trials,
                "series_trials": row["series_trials"],
                "trades": int(m.get("trades", 0)),
                "exposure": m.get("exposure"),
                "verdict": row["verdict"],
                "last_params": res.best_params,
                "fold_params": [f.params for f in res.folds],
                "seconds": seconds[res.spec.family],
            }
        )
    ev = PortfolioEvaluator(frame, PORTFOLIO_FAMILIES[names[0]], interval="1h", costs=costs)
    bench = oos_benchmarks(frame, results[0])
    u = ev.universe
    rebalanced = simulate(
        u.open[first:last],
        u.close[first:last],
        np.full((last - first, len(coins)), 1.0 / len(coins)),
        u.schedule(REBALANCED_EVERY)[first:last],
        costs=costs,
        bars_per_year=ev.bars_per_year,
    )
    labels = {c: f"buy & hold {c}" for c in coins} | {
        BASKET: "equal-weight basket (not rebalanced)"
    }
    runs = {labels[k]: v for k, v in bench.items()}
    runs["equal-weight basket (rebalanced every 30 d)"] = rebalanced
    for label, run in runs.items():
        rows.append(
            {
                "name": label,
                "oos_sharpe": run.metrics["sharpe"],
                "oos_return": run.metrics["total_return"],
                "oos_max_drawdown": run.metrics["max_drawdown"],
                "benchmark": True,
            }
        )
    if args.json:
        print(json.dumps({"setup": head, "rows": rows}, default=str))
        return 0
    print_table(rows)
    print(f"\n{len(results)} families in {time.perf_counter() - t_all:.0f} s")
    return 0


def print_table(rows: list[dict[str, Any]]) -> None:
    """The markdown table of the families and the benchmarks, then each family's parameters."""
    print()
    print(
        "| strategy / benchmark | OOS Sharpe | OOS return | max DD | DSR (family's trials) "
        "| DSR (every trial on the universe) | PBO | trials | trades | exposure | verdict |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for r in rows:
        if r.get("benchmark"):
            print(
                f"| {r['name']} | {r['oos_sharpe']:.2f} | {r['oos_return']:+.1%} "
                f"| {r['oos_max_drawdown']:.1%} | | | | | | | benchmark |"
            )
            continue
        pbo = "n/a" if r["pbo"] is None else f"{r['pbo']:.2f}"
        print(
            f"| {r['name']} | {r['oos_sharpe']:.2f} | {r['oos_return']:+.1%} "
            f"| {r['oos_max_drawdown']:.1%} | {r['dsr_family']:.3f} | {r['dsr_series']:.3f} "
            f"| {pbo} | {r['n_trials']} (of {r['series_trials']}) | {r['trades']} "
            f"| {r['exposure']:.0%} | {r['verdict']} |"
        )
    print()
    for r in rows:
        if not r.get("benchmark"):
            print(f"{r['name']}: last fold's parameters {r['last_params']}")


if __name__ == "__main__":
    sys.exit(main())
