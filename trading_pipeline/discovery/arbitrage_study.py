"""The cross-venue arbitrage study on a stored basis: walk-forward, test windows only.

The input is the aligned two-venue frame the basis step writes (``open_time``, ``a_open`` …
``b_close``, ``basis_bps``): venue ``a`` first. The threshold, the rebalancing period and the
inventory use are chosen on each train window by net arbitrage P&L and traded on the next test
window (:func:`~trading_pipeline.discovery.multi_series.walk_forward_multi`, the same study
``benchmarks/arb_real.py`` reports for three cost scenarios); the fees, slippage and rebalancing
cost describe the venues and are not tuned. The result says what survives costs out of sample,
beside holding the same inventory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.multi import ArbSettings
from trading_pipeline.discovery.multi_series import walk_forward_multi
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.arbitrage import BINANCE_SPOT_FEE, COINBASE_TAKER_FEE, Arbitrage

ALIGNED_COLUMNS = ("open_time", "a_open", "a_high", "a_low", "a_close", "b_open", "b_close")
THRESHOLDS_BPS = (0.0, 2.0, 5.0, 10.0, 20.0, 50.0)
REBALANCE_BARS = (24, 168)
MAX_USE = (0.25, 0.5, 1.0)


@dataclass(frozen=True)
class ArbCosts:
    """Per side: venue fees (fractions), slippage per leg (bps), rebalancing (bps + base fee)."""

    fee_a: float = BINANCE_SPOT_FEE
    fee_b: float = COINBASE_TAKER_FEE
    slippage_bps: float = 2.0
    rebalance_bps: float = 5.0
    withdraw_fee_base: float = 0.0002


def arbitrage_study(
    aligned: pl.DataFrame,
    *,
    interval: str = "1h",
    folds: int = 4,
    cash: float = 10_000.0,
    costs: ArbCosts | None = None,
) -> dict[str, Any]:
    """Walk-forward arbitrage over ``aligned`` bars: per fold the parameters and the test
    result, the out-of-sample totals (net arbitrage P&L, gross spread captured, buy-and-hold)."""
    missing = [c for c in ALIGNED_COLUMNS if c not in aligned.columns]
    if missing:
        raise UserInputError(f"aligned bars lack column(s) {', '.join(missing)}")
    c = costs or ArbCosts()
    family = Arbitrage()
    fixed = {
        "fee_a_bps": c.fee_a * 1e4,
        "fee_b_bps": c.fee_b * 1e4,
        "slippage_bps": c.slippage_bps,
        "rebalance_bps": c.rebalance_bps,
    }
    grid = family.grid(
        threshold_bps=list(THRESHOLDS_BPS),
        rebalance_bars=list(REBALANCE_BARS),
        max_use=list(MAX_USE),
        **fixed,
    )
    wf = walk_forward_multi(
        {"aligned": aligned.sort("open_time")},
        family,
        grid,
        folds=folds,
        interval=interval,
        cash=cash,
        costs={
            "a": CostModel(fee=c.fee_a, slippage_bps=c.slippage_bps),
            "b": CostModel(fee=c.fee_b, slippage_bps=c.slippage_bps),
        },
        arb=ArbSettings(withdraw_fee_base=c.withdraw_fee_base, transfer_bars=1),
        objective="net_arb_pnl",
        n_bars=aligned.height,
    )
    traded = [f for f in wf.folds if not f["cash"]]
    return {
        "bars": aligned.height,
        "folds": wf.folds,
        "oos": wf.oos,
        "combinations": len(grid),
        "gross_spread_pnl": sum(f["test"]["gross_spread_pnl"] for f in traded),
        "net_arb_pnl": sum(f["test"]["net_arb_pnl"] for f in traded),
        "folds_in_cash": len(wf.folds) - len(traded),
        "cash": cash,
        "costs": fixed | {"withdraw_fee_base": c.withdraw_fee_base},
    }
