"""The continuous out-of-sample account beside the flat-restart figure, on real BTC/USDT 1h.

For every single-series family of the strategy registry (buy-and-hold is the benchmark, not a
candidate): a seeded walk-forward study (4 folds, a fixed number of TPE trials per fold, in an
in-memory Optuna storage) over the last 5 years of the real hourly history, then the study's
out-of-sample result as this project reports it, ONE account over the concatenated test
windows (positions carried over the fold boundaries, parameters switched there, fees and
slippage on), beside the same folds' parameters with every test window restarted flat from
cash (what was reported before), and buy-and-hold over the same span with the same costs.

Data: ``Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather`` under the shared
real-data folder (``TP_REAL_DATA``, else the first ``shared/data/real`` above this checkout);
without it the report says so and exits 0. This is a measurement, not a test.
Run: ``make report-oos`` (or ``.venv/bin/python benchmarks/oos_continuous_real.py [--trials N]``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
FILE = "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"


def real_dir() -> Path | None:
    """The shared real-data folder: ``TP_REAL_DATA``, else ``shared/data/real`` in an ancestor."""
    env = os.environ.get("TP_REAL_DATA")
    if env:
        return Path(env)
    for up in ROOT.parents:
        if (up / "shared" / "data" / "real").is_dir():
            return up / "shared" / "data" / "real"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100, help="TPE trials per fold (default 100)")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--years", type=float, default=5.0, help="the last N years of bars")
    ap.add_argument("--from", dest="start", help="first UTC day (with --to: instead of --years)")
    ap.add_argument("--to", dest="end", help="UTC day after the last bar (with --from)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--family", action="append", help="only these families (repeatable)")
    ap.add_argument("--json", action="store_true", help="one JSON object per family, no table")
    args = ap.parse_args(argv)
    if args.trials < 1 or args.folds < 1 or not args.years > 0:
        print("error: --trials and --folds must be >= 1, --years > 0", file=sys.stderr)
        return 2

    base = real_dir()
    path = base / FILE if base else None
    if path is None or not path.exists():
        print(
            f"error: real BTC/USDT 1h data absent ({path or 'no shared/data/real found'}); "
            "no report",
            file=sys.stderr,
        )
        return 2

    # lazy: the skip above needs none of these (optuna, numba kernels)
    import optuna

    from trading_pipeline.discovery.results import collect
    from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
    from trading_pipeline.market.candles import read_candle_file
    from trading_pipeline.strategies.registry import FAMILIES

    bars = read_candle_file(path)
    if args.start or args.end:
        try:
            lo = datetime.fromisoformat(args.start or "1970-01-01").replace(tzinfo=UTC)
            hi = datetime.fromisoformat(args.end or "9999-01-01").replace(tzinfo=UTC)
        except ValueError as exc:
            print(f"error: --from/--to: {exc}", file=sys.stderr)
            return 2
        bars = bars.filter((pl.col("open_time") >= lo) & (pl.col("open_time") < hi))
    else:
        bars = bars.tail(int(args.years * 8760))
    names = [n for n in FAMILIES if n != "buy_and_hold"]
    if args.family:
        unknown = sorted(set(args.family) - set(names))
        if unknown:
            print(
                f"error: unknown family {unknown[0]!r}; known: {', '.join(names)}", file=sys.stderr
            )
            return 2
        names = [n for n in names if n in args.family]
    walk = WalkForward(folds=args.folds)
    folds = walk.split(bars.height)
    first = folds[0].test_start
    print(
        f"BTC/USDT 1h, {bars.height} bars {bars['open_time'][0]} → {bars['open_time'][-1]}; "
        f"{args.folds} folds, out of sample {bars['open_time'][first]} → "
        f"{bars['open_time'][-1]} ({bars.height - first} bars); {args.trials} TPE trials per "
        f"fold, seed {args.seed}; fee 0.1% + 2 bps slippage per side",
        flush=True,
    )
    rows = []
    t_all = time.perf_counter()
    for name in names:
        fam = FAMILIES[name]
        t0 = time.perf_counter()
        storage = optuna.storages.InMemoryStorage()
        spec = make_spec(bars, fam, series="spot-BTCUSDT-1h", interval="1h", walk=walk)
        tune(bars, fam, spec=spec, storage=storage, n_trials=args.trials, seed=args.seed)
        res = collect(bars, fam, spec=spec, storage=storage)
        cont, flat, bh = res.metrics, res.flat_restart_metrics, res.bh_metrics
        switches = sum(a.params != b.params for a, b in zip(res.folds, res.folds[1:], strict=False))
        row = {
            "family": name,
            "oos_return": cont["total_return"],
            "oos_return_flat_restart": flat["total_return"],
            "oos_sharpe": cont["sharpe"],
            "oos_sharpe_flat_restart": flat["sharpe"],
            "oos_max_drawdown": cont["max_drawdown"],
            "oos_max_drawdown_flat_restart": flat["max_drawdown"],
            "oos_trades": int(cont["trades"]),
            "oos_trades_flat_restart": int(flat["trades"]),
            "oos_exposure": cont["exposure"],
            "bh_return": bh["total_return"],
            "bh_sharpe": bh["sharpe"],
            "parameter_switches": switches,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"  {name}: {row['seconds']} s", flush=True)
    if not args.json:
        print()
        print(TABLE_HEAD)
        for r in rows:
            print(
                f"| {r['family']} | {r['oos_return']:+.1%} | {r['oos_return_flat_restart']:+.1%} "
                f"| {r['oos_sharpe']:.2f} | {r['oos_sharpe_flat_restart']:.2f} "
                f"| {r['oos_max_drawdown']:.1%} | {r['oos_max_drawdown_flat_restart']:.1%} "
                f"| {r['oos_trades']} | {r['oos_trades_flat_restart']} "
                f"| {r['oos_exposure']:.0%} | {r['bh_return']:+.1%} | {r['bh_sharpe']:.2f} |"
            )
        print(f"\n{len(rows)} families in {time.perf_counter() - t_all:.0f} s")
    return 0


TABLE_HEAD = (
    "| family | OOS return (continuous) | OOS return (flat restart) | Sharpe (cont.) "
    "| Sharpe (flat) | max DD (cont.) | max DD (flat) | trades (cont.) | trades (flat) "
    "| exposure (cont.) | buy & hold return | buy & hold Sharpe |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


if __name__ == "__main__":
    sys.exit(main())
