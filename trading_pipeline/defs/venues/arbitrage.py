"""The cross-venue arbitrage study as an asset, reading the basis ``venue_basis`` wrote.

``arbitrage_study`` runs :func:`trading_pipeline.discovery.arbitrage_study.arbitrage_study`
(walk-forward, test windows only, costs on) over the aligned Binance × Coinbase bars of the
basis file, writes the report as JSON beside it and shows what survives costs out of sample
(bot4, the arbitrage bot, stays in cash while nothing does).
"""

import json

import dagster as dg

from trading_pipeline.backtest.metrics import json_safe
from trading_pipeline.defs.history.metadata import markdown_table
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.venues.assets import (
    GROUP,
    KEY_PREFIX,
    BasisConfig,
    basis_path,
    parse_market,
    read_basis,
    venue_basis,
)
from trading_pipeline.discovery.arbitrage_study import arbitrage_study as run_study
from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_write_text


class ArbitrageStudyConfig(dg.Config):
    """Which basis file to study (the pair ``venue_basis`` compared) and how many folds."""

    a: str = BasisConfig().a
    b: str = BasisConfig().b
    interval: str = "1h"
    folds: int = 4


@dg.asset(key_prefix=KEY_PREFIX, deps=[venue_basis], group_name=GROUP, kinds={"python", "json"})
def arbitrage_study(
    context: dg.AssetExecutionContext, config: ArbitrageStudyConfig, lake: DataLake
) -> dg.MaterializeResult:
    """Two-venue arbitrage walk-forward on the stored basis: net of fees, slippage and
    rebalancing, out of sample only, beside holding the inventory."""
    try:
        a, b = parse_market(config.a), parse_market(config.b)
        path = basis_path(lake.layout.venue_basis_dir, a, b, config.interval)
        if not path.is_file():
            raise UserInputError(f"no basis at {path}: materialize venues/venue_basis first")
        aligned = read_basis(path)
        report = run_study(aligned, interval=config.interval, folds=config.folds)
    except UserInputError as exc:
        raise dg.Failure(description=str(exc)) from exc
    out = path.with_name(path.stem + ".arbitrage.json")
    atomic_write_text(out, json.dumps(json_safe(report), indent=1, default=str))
    oos = report["oos"]
    context.log.info(
        f"{a} vs {b}: out-of-sample net arbitrage {report['net_arb_pnl']:.2f} on "
        f"{report['cash']:.0f}, {report['folds_in_cash']} of {len(report['folds'])} folds in cash"
    )
    return dg.MaterializeResult(
        metadata={
            "basis": dg.MetadataValue.path(str(path)),
            "report": dg.MetadataValue.path(str(out)),
            "bars": report["bars"],
            "combinations": report["combinations"],
            "oos_return": float(oos["total_return"]),
            "oos_buy_and_hold_return": float(oos["buy_and_hold_return"]),
            "dsr_probability": float(oos["dsr_probability"]),
            "gross_spread_pnl": float(report["gross_spread_pnl"]),
            "net_arb_pnl": float(report["net_arb_pnl"]),
            "folds_in_cash": report["folds_in_cash"],
            "folds": dg.MetadataValue.md(
                markdown_table(
                    ["fold", "threshold bps", "rebalance bars", "max use", "trades", "net arb"],
                    (
                        (
                            f["fold"] + 1,
                            f["params"]["threshold_bps"],
                            f["params"]["rebalance_bars"],
                            f["params"]["max_use"],
                            f["test"].get("trades"),
                            "cash" if f["cash"] else f["test"].get("net_arb_pnl"),
                        )
                        for f in report["folds"]
                    ),
                )
            ),
        }
    )
