"""The selector's honest held-out result on real multi-year hourly data, beside every baseline.

1. Bars: BTC/USDT and ETH/USDT (Roshan7869's freqtrade feathers) and BNB/USDT (wuTribe's), hourly,
   cut to the span all three cover (2020-01-01 → 2024-11-03).
2. A modest walk-forward discovery (``discovery.tuning.tune``, in-memory Optuna storage) of the
   fleet's 1-hour families (bot1: sma_cross; bot3: momentum, donchian_breakout, macd) on each
   series; ``collect`` gives each study's concatenated out-of-sample per-bar returns (fees and
   slippage on).
3. ``build_dataset`` (daily UTC decisions, state from closed bars only, best candidate net of
   costs as the label), then ``train``: purged walk-forward CV for the model choice on the
   development rows, one held-out period at the end nothing was tuned on, the model and every
   baseline scored on it with switching costs. Registered in a throw-away MLflow SQLite store.

Run: ``.venv/bin/python benchmarks/selector_real.py [--trials 40] [--folds 8] [--every 1d,1w]``.
Several minutes on two busy cores (most of it the discovery).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = Path(os.environ.get("TP_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))
FILES = {
    "spot-BTCUSDT-1h": "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather",
    "spot-ETHUSDT-1h": "Roshan7869-algotrading/freqtrade_binance_spot_1h/ETH_USDT-1h.feather",
    "spot-BNBUSDT-1h": "wuTribe-freqtrade/freqtrade_binance_spot_1h/BNB_USDT-1h.feather",
}
FAMILIES = ("sma_cross", "momentum", "donchian_breakout", "macd")
START = datetime(2020, 1, 1, tzinfo=UTC)
END = datetime(2024, 11, 3, tzinfo=UTC)


def load_bars() -> dict[str, pl.DataFrame]:
    from trading_pipeline.market.candles import read_candle_file

    out = {}
    for key, rel in FILES.items():
        df = read_candle_file(REAL / rel)
        out[key] = df.filter((pl.col("open_time") >= START) & (pl.col("open_time") < END))
    return out


def discover(bars: dict[str, pl.DataFrame], *, trials: int, folds: int) -> list:  # type: ignore[type-arg]
    import optuna

    from trading_pipeline.backtest.costs import CostModel
    from trading_pipeline.discovery.results import collect
    from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
    from trading_pipeline.strategies.registry import get_family

    storage = optuna.storages.InMemoryStorage()
    results = []
    for series, b in bars.items():
        for name in FAMILIES:
            family = get_family(name)
            t0 = time.perf_counter()
            spec = make_spec(
                b,
                family,
                series=series,
                interval="1h",
                walk=WalkForward(folds=folds),
                costs=CostModel(),
            )
            tune(b, family, spec=spec, storage=storage, n_trials=trials, seed=0)
            r = collect(b, family, spec=spec, storage=storage)
            results.append(r)
            print(
                f"  {spec.study_group}: oos sharpe {r.metrics['sharpe']:.2f} "
                f"return {r.metrics['total_return']:+.2%} (b&h {r.bh_metrics['total_return']:+.2%})"
                f"  {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
    return results


def report_one(results: list, bars: dict[str, pl.DataFrame], *, every: str, args: Any) -> None:  # type: ignore[type-arg]
    """Dataset at one decision window, training, and the held-out comparison, printed."""
    from trading_pipeline.bots.spec import FLEET
    from trading_pipeline.selector.dataset import build_dataset
    from trading_pipeline.selector.registry import MlflowRegistry
    from trading_pipeline.selector.train import TrainSettings, comparison_markdown, train
    from trading_pipeline.tracking import default_tracking_uri

    t1 = time.perf_counter()
    ds = build_dataset(
        results,
        bars,
        every=every,
        provenance={"source": {k: str(v) for k, v in FILES.items()}},
        holdout_fraction=args.holdout,
        fleet=FLEET,
    )
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        registry = MlflowRegistry(default_tracking_uri(tmp), "strategy-selector")
        report = train(ds, registry=registry, settings=TrainSettings(holdout_fraction=args.holdout))
        t3 = time.perf_counter()
        bots_got = champion_and_decision(registry, bars)
    summary = ds.summary()
    if args.json:
        print(json.dumps(report.to_json(), indent=1, default=str))
    print()
    print(f"=== decision window {every} ===")
    print(
        f"decision rows: {summary['rows']} ({summary['first_decision']} .. "
        f"{summary['last_decision']}), labels {summary['label_counts']}"
    )
    print(
        f"development rows {report.n_development}, held-out rows {report.n_holdout}: "
        f"{report.holdout_start} .. {report.holdout_end}"
    )
    sel = ds.selection
    print(
        f"candidates chosen on returns before {sel['cutoff']} "
        f"({sel['matching_studies']} studies match the fleet, cap {sel['max_candidates']}):"
    )
    for row in sel["scores"]:
        print(
            f"  {'*' if row['picked'] else ' '} {row['study']:<40} dev trades {row['trades']:>4}  "
            f"dsr {row['dsr_probability']:.3f}  sharpe/bar {row['sharpe_per_bar']:+.4f}"
        )
    print(f"model chosen by purged CV: {report.config.label}, rule {report.model.decision_rule}")
    for row in report.cv:
        print(
            f"  cv {row['config']:<52} net {row['net_return']:+.4f}  log loss {row['log_loss']:.4f}"
        )
    print()
    print("held-out period, switching costs on (fee+slippage per side moved):")
    print(comparison_markdown(report))
    print()
    model_ret = report.holdout["selector"]["net_return"]
    beaten = [
        n for n, m in report.holdout.items() if n != "selector" and model_ret > m["net_return"]
    ]
    not_beaten = [n for n in report.holdout if n != "selector" and n not in beaten]
    print(f"the selector beats: {', '.join(beaten) or 'nothing'}")
    print(f"the selector does NOT beat: {', '.join(not_beaten) or 'nothing'}")
    print(f"gate: {report.gate.reason if report.gate else '-'}")
    if report.policy_gate is not None:
        print(
            f"the best baseline a bot can follow, {report.policy_name}, registered as "
            f"v{report.policy_version} (policy=baseline): "
            f"{'promoted' if report.policy_gate.promote else 'not promoted'} "
            f"({report.policy_gate.reason})"
        )
    print(bots_got)
    print(f"seconds: dataset {t2 - t1:.1f}, training {t3 - t2:.1f}", flush=True)
    latency(bars, report.model)


def champion_and_decision(registry: Any, bars: dict[str, pl.DataFrame]) -> str:
    """Which version is champion (model or baseline policy), and the decision each bot gets from
    it at the end of the data (hysteresis from scratch) with the assignment a deploy would write."""
    from trading_pipeline.bots.fleet import candidates_from_decisions
    from trading_pipeline.bots.spec import FLEET
    from trading_pipeline.selector.decide import ModelRef, decide_once
    from trading_pipeline.selector.model import MODEL_NAME

    champ = registry.champion(MODEL_NAME)
    if champ is None:
        return "champion: none"
    version = champ[0]
    tags = registry.client.get_model_version(MODEL_NAME, str(version)).tags
    model = registry.load(MODEL_NAME)
    policy = tags.get("policy", "model")
    lines = [f"champion: {MODEL_NAME} v{version} ({policy}), {model!r}"]
    closed = {k: v.filter(pl.col("open_time") < END) for k, v in bars.items()}
    decisions = decide_once(
        model, closed, END, {}, model_ref=ModelRef(MODEL_NAME, version), fleet=FLEET
    )
    assignments = {
        a.bot: a
        for a in candidates_from_decisions({d.bot: d for d in decisions}, {}, fleet=None, now=END)
    }
    lines.append(f"decision the bots got at {END:%Y-%m-%d %H:%M} UTC (and the assignment):")
    for d in decisions:
        a = assignments.get(d.bot)
        what = "-" if a is None else f"{a.family} {dict(a.params)} on {','.join(a.symbols)}"
        lines.append(f"  {d.bot:<5} {d.choice:<36} {what}")
    return "\n".join(lines)


def latency(bars: dict[str, pl.DataFrame], model: Any, calls: int = 300) -> None:
    """Milliseconds for the state of 3 series x 600 bars and for one predict_proba."""
    import numpy as np

    from trading_pipeline.selector.state import latest_state

    tails = {k: v.tail(600) for k, v in bars.items()}
    state = latest_state(tails, interval="1h")
    t_state, t_model = [], []
    for _ in range(calls):
        a = time.perf_counter()
        state = latest_state(tails, interval="1h")
        b = time.perf_counter()
        model.predict_proba(state)
        t_model.append(time.perf_counter() - b)
        t_state.append(b - a)
    for name, ts in (("latest_state 3x600 bars", t_state), ("predict_proba", t_model)):
        q = np.quantile(np.array(ts) * 1e3, [0.5, 0.99])
        print(f"latency {name}: p50 {q[0]:.2f} ms, p99 {q[1]:.2f} ms over {calls} calls")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=40, help="finished trials per fold")
    ap.add_argument("--folds", type=int, default=8, help="walk-forward folds of the discovery")
    ap.add_argument("--holdout", type=float, default=0.25, help="held-out share of the rows")
    ap.add_argument("--every", default="1d,1w", help="decision windows to try, comma-separated")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    warnings.filterwarnings("ignore")
    if not REAL.is_dir():
        print(f"real data folder absent: {REAL}", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    bars = load_bars()
    print(f"bars: {', '.join(f'{k} {v.height}' for k, v in bars.items())}", flush=True)
    print(
        f"discovery: {len(FAMILIES)} families x {len(bars)} series, {args.folds} folds, "
        f"{args.trials} trials per fold",
        flush=True,
    )
    results = discover(bars, trials=args.trials, folds=args.folds)
    t1 = time.perf_counter()
    for every in args.every.split(","):
        report_one(results, bars, every=every.strip(), args=args)
    print(f"seconds: discovery {t1 - t0:.0f}, all {time.perf_counter() - t0:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
