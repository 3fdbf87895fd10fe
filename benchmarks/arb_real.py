"""Cross-venue arbitrage on the real hourly overlap, reported honestly.

Venue a = Binance BTC/USDT (Roshan7869 freqtrade 1h), venue b = Coinbase BTC-USD (saijayanth888
freqtrade 1h), 2024-04-18 .. 2026-05-08, aligned on UTC open time (bars missing on either side
excluded). The basis ``b/a - 1`` includes the USDT/USD rate: it is not a pure venue spread, and
P&L sums the two venues' quote balances at 1 USDT = 1 USD.

Reports:
1. the alignment (overlap, excluded bars, |basis| median / p99 / max);
2. the gross spread available: |basis| at the signal's close, and what a pair of market orders
   placed at the *next* open (the earliest fill at hourly granularity) actually captures;
3. for three cost scenarios, the threshold grid over the whole overlap (in-sample, labelled so)
   and a 4-fold walk-forward (threshold, rebalance period and inventory use tuned on each train
   window, traded on the next test window; only test windows reported), with gross spread
   captured, fees, slippage, rebalancing cost and the net result against holding the same
   starting inventory, beside buy-and-hold;
4. the hedging family (bot5) on Binance BTC/USDT 1h 2018-2026 with ETH as the correlation
   partner, walk-forward against buy-and-hold (stable-coin mode: the shared data holds no
   multi-year USD-M hourly series for the pair hedge).

Cost scenarios (per side, taker, market orders):
- ``default``: Binance spot 0.10 % (regular tier, no BNB discount) + Coinbase Advanced taker
  0.60 % (entry tier, under $10k 30-day volume), 2 bps slippage per leg, rebalancing 5 bps of
  the moved quote (USDT <-> USD conversion and transfer) + 0.0002 BTC per base withdrawal;
- ``low_fee``: Binance 0.075 % (BNB discount) + Coinbase 0.05 % (its lowest published taker
  tier, $400M+ 30-day volume), same slippage and rebalancing;
- ``frictionless``: no fee, no slippage, free rebalancing: the gross upper bound.

Run: ``.venv/bin/python benchmarks/arb_real.py [--json out.json]`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REAL = Path(__file__).resolve().parents[2] / "shared/data/real"
BINANCE = REAL / "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather"
COINBASE = REAL / "saijayanth888-trading-bot/freqtrade_coinbase_spot_1h/BTC_USD-1h.feather"
CASH = 10_000.0
THRESHOLDS = [0.0, 2.0, 5.0, 10.0, 20.0, 50.0]


@dataclass(frozen=True)
class Scenario:
    name: str
    fee_a: float
    fee_b: float
    slippage_bps: float
    rebalance_bps: float
    withdraw_fee_base: float


SCENARIOS = (
    Scenario("default", 0.001, 0.006, 2.0, 5.0, 0.0002),
    Scenario("low_fee", 0.00075, 0.0005, 2.0, 5.0, 0.0002),
    Scenario("frictionless", 0.0, 0.0, 0.0, 0.0, 0.0),
)


def _deflated(oos: dict[str, float]) -> str:
    """The deflated Sharpe line: the out-of-sample Sharpe against the luck of every trial."""
    return (
        f"deflated Sharpe p {oos['dsr_probability']:.2f} over {oos['n_trials']:.0f} trials "
        f"(per-bar Sharpe {oos['sharpe_per_bar']:.4f} vs benchmark {oos['dsr_benchmark_per_bar']:.4f})"
    )


def spread_available(aligned: pl.DataFrame) -> dict[str, Any]:
    """|basis| at the close, and the basis captured by trading it at the next open."""
    close_b = ((aligned["b_close"] / aligned["a_close"] - 1) * 1e4).to_numpy()
    open_b = ((aligned["b_open"] / aligned["a_open"] - 1) * 1e4).to_numpy()
    # a signal at close t fills at open t+1: buy the cheap venue, sell the dear one (by close t)
    captured = np.sign(close_b[:-1]) * open_b[1:]
    # consecutive hours only (a missing hour makes "next open" a later bar)
    step = aligned["open_time"].diff().dt.total_hours().to_numpy()[1:]
    captured = captured[step == 1]
    out: dict[str, Any] = {
        "mean_abs_close_basis_bps": float(np.mean(np.abs(close_b))),
        "median_abs_close_basis_bps": float(np.median(np.abs(close_b))),
        "mean_signed_basis_bps": float(np.mean(close_b)),
        "mean_captured_next_open_bps": float(np.mean(captured)),
        "median_captured_next_open_bps": float(np.median(captured)),
        "hours_above": {},
    }
    for level in (5, 10, 20, 40, 79):
        big = np.abs(close_b[:-1])[step == 1] > level
        out["hours_above"][str(level)] = {
            "hours": int(big.sum()),
            "mean_captured_bps": float(np.mean(captured[big])) if big.any() else None,
        }
    return out


def hedging_section(folds: int) -> dict[str, Any]:
    """bot5's family on Binance BTC/USDT 1h 2018-2026 with ETH/USDT as the correlation partner,
    stable-coin mode (no multi-year USD-M hourly series is in the shared data), walk-forward."""
    from trading_pipeline.backtest.costs import CostModel
    from trading_pipeline.discovery.multi_series import walk_forward_multi
    from trading_pipeline.market.candles import read_candle_file
    from trading_pipeline.strategies.hedging import Hedging

    btc = read_candle_file(BINANCE)
    eth = read_candle_file(BINANCE.with_name("ETH_USDT-1h.feather"))
    fam = Hedging()
    grid = fam.grid(
        dd_limit=[0.1, 0.2, 0.3], use_bear=[True, False], cooldown=[24, 168], corr_max=[1.0, 0.9]
    )
    costs = CostModel(fee=0.001, slippage_bps=2.0)
    wf = walk_forward_multi(
        {"BTCUSDT": btc, "ETHUSDT": eth},
        fam,
        grid,
        folds=folds,
        interval="1h",
        cash=CASH,
        costs=costs,
        objective="sharpe",
        cash_unless_positive=False,
    )
    print(
        f"\n== hedging (bot5): BTC/USDT 1h, ETH/USDT partner, 0.1 % + 2 bps, stable-coin mode; "
        f"walk-forward {folds} folds x {len(grid)} combinations (objective: train Sharpe) =="
    )
    for row in wf.folds:
        m, b, p = row["test"], row["benchmark"], row["params"]
        print(
            f"  fold {row['fold'] + 1}: dd {p['dd_limit']:g}, bear {p['use_bear']}, cooldown "
            f"{p['cooldown']}, corr_max {p['corr_max']:g} -> return {m['total_return']:+.1%} "
            f"maxDD {m['max_drawdown']:.1%} sharpe {m['sharpe']:.2f} exposure "
            f"{m['exposure']:.0%} trades {m['trades']:.0f} | buy-and-hold "
            f"{b['total_return']:+.1%} maxDD {b['max_drawdown']:.1%} sharpe {b['sharpe']:.2f}"
        )
    print(
        f"  out-of-sample total: hedging {wf.oos['total_return']:+.1%}, buy-and-hold "
        f"{wf.oos['buy_and_hold_return']:+.1%}; {_deflated(wf.oos)}"
    )
    return {"folds": wf.folds, "oos": wf.oos}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()
    if not (BINANCE.exists() and COINBASE.exists()):
        print(f"real data absent under {REAL}; nothing to report")
        return 1

    from trading_pipeline.backtest.costs import CostModel
    from trading_pipeline.backtest.multi import ArbSettings, backtest_multi
    from trading_pipeline.discovery.multi_series import walk_forward_multi
    from trading_pipeline.market.align import align_venues, alignment_report
    from trading_pipeline.market.candles import read_candle_file
    from trading_pipeline.strategies.arbitrage import Arbitrage, cost_bps

    t0 = time.perf_counter()
    a, b = read_candle_file(BINANCE), read_candle_file(COINBASE)
    aligned = align_venues(a, b, interval="1h")
    rep = alignment_report(a, b, interval="1h", aligned=aligned)
    report: dict[str, Any] = {"alignment": rep.as_dict(), "spread": spread_available(aligned)}
    print("== alignment: venue a = Binance BTC/USDT, venue b = Coinbase BTC-USD, 1h ==")
    print(
        f"overlap {rep.overlap} h, {rep.first} .. {rep.last}; excluded: Binance-only "
        f"{rep.a_only} ({rep.a_only_in_span} inside the common span = Coinbase gaps), "
        f"Coinbase-only {rep.b_only}"
    )
    print(
        f"|basis| median {rep.median_abs_basis_bps:.2f} bps, p99 {rep.p99_abs_basis_bps:.2f}, "
        f"max {rep.max_abs_basis_bps:.2f}; mean signed basis {rep.mean_basis_bps:+.2f} bps "
        "(includes the USDT/USD rate)"
    )
    sp = report["spread"]
    print("\n== gross spread available ==")
    print(
        f"mean |basis| at the close {sp['mean_abs_close_basis_bps']:.2f} bps; traded at the next "
        f"open (the earliest hourly fill) it captures on average "
        f"{sp['mean_captured_next_open_bps']:.2f} bps (median "
        f"{sp['median_captured_next_open_bps']:.2f})"
    )
    for level, row in sp["hours_above"].items():
        cap = row["mean_captured_bps"]
        cap_s = f"{cap:.2f} bps captured at the next open" if cap is not None else "-"
        print(f"  hours with |basis| > {level:>2} bps: {row['hours']:>6}   {cap_s}")

    fam = Arbitrage()
    series = {"aligned": aligned}
    report["scenarios"] = {}
    for sc in SCENARIOS:
        costs = {
            "a": CostModel(fee=sc.fee_a, slippage_bps=sc.slippage_bps),
            "b": CostModel(fee=sc.fee_b, slippage_bps=sc.slippage_bps),
        }
        arb = ArbSettings(withdraw_fee_base=sc.withdraw_fee_base, transfer_bars=1)
        fixed = {
            "fee_a_bps": sc.fee_a * 1e4,
            "fee_b_bps": sc.fee_b * 1e4,
            "slippage_bps": sc.slippage_bps,
            "rebalance_bps": sc.rebalance_bps,
        }
        est = cost_bps(fam.validate(fixed))
        print(
            f"\n== scenario {sc.name}: fees a {sc.fee_a:.4%} b {sc.fee_b:.4%}, slippage "
            f"{sc.slippage_bps} bps/leg, rebalancing {sc.rebalance_bps} bps + "
            f"{sc.withdraw_fee_base} BTC; round-trip cost estimate {est:.1f} bps =="
        )
        print("in-sample over the whole overlap (for the record; not a result):")
        print(
            "  thr_bps trades  gross$   fees$  slip$  rebal$   net_arb$  net_bps_cap  "
            "inventory%  b&h%"
        )
        rows = []
        for thr in THRESHOLDS:
            params = {**fixed, "threshold_bps": thr, "rebalance_bars": 168, "max_use": 0.5}
            r = backtest_multi(series, fam, params, cash=CASH, costs=costs, interval="1h", arb=arb)
            m = r.metrics
            rows.append({"threshold_bps": thr, **m, "buy_and_hold": r.benchmark["total_return"]})
            print(
                f"  {thr:7.1f} {m['trades']:6.0f} {m['gross_spread_pnl']:7.2f} "
                f"{m['fees_paid']:7.2f} {m['slippage_cost']:6.2f} {m['rebalance_cost']:7.2f} "
                f"{m['net_arb_pnl']:10.2f} {m['net_arb_pnl'] / CASH * 1e4:11.2f} "
                f"{m['inventory_return']:10.1%} {r.benchmark['total_return']:5.1%}"
            )
        grid = fam.grid(
            threshold_bps=THRESHOLDS, rebalance_bars=[24, 168], max_use=[0.25, 0.5, 1.0], **fixed
        )
        wf = walk_forward_multi(
            series,
            fam,
            grid,
            folds=args.folds,
            interval="1h",
            cash=CASH,
            costs=costs,
            arb=arb,
            objective="net_arb_pnl",
            n_bars=aligned.height,
        )
        print(f"walk-forward, {args.folds} folds, {len(grid)} combinations, test windows only:")
        for row in wf.folds:
            m, p = row["test"], row["params"]
            verdict = (
                "stays in cash (nothing paid on train)"
                if row["cash"]
                else f"net arb ${m['net_arb_pnl']:.2f} ({m['total_return']:+.4%})"
            )
            print(
                f"  fold {row['fold'] + 1}: threshold {p['threshold_bps']:g} bps, rebalance "
                f"{p['rebalance_bars']} h, max_use {p['max_use']:g} -> trades "
                f"{m['trades']:.0f}, gross ${m['gross_spread_pnl']:.2f}, costs "
                f"${m['fees_paid'] + m['slippage_cost'] + m['rebalance_cost']:.2f}: {verdict}; "
                f"b&h {row['benchmark']['total_return']:+.1%}"
            )
        gross = sum(r["test"]["gross_spread_pnl"] for r in wf.folds if not r["cash"])
        net = sum(r["test"]["net_arb_pnl"] for r in wf.folds if not r["cash"])
        print(
            f"  out-of-sample total: net arb return {wf.oos['total_return']:+.4%} "
            f"(gross ${gross:.2f}, net ${net:.2f} on ${CASH:,.0f}); "
            f"buy-and-hold {wf.oos['buy_and_hold_return']:+.1%}; {_deflated(wf.oos)}"
        )
        report["scenarios"][sc.name] = {
            "cost_estimate_bps": est,
            "in_sample": rows,
            "walk_forward": {"folds": wf.folds, "oos": wf.oos, "gross": gross, "net": net},
        }
    report["hedging"] = hedging_section(args.folds)
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    if args.json:
        from trading_pipeline.backtest.metrics import json_safe
        from trading_pipeline.fsutil import atomic_write_text

        atomic_write_text(args.json, json.dumps(json_safe(report), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
