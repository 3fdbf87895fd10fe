"""The cross-venue arbitrage study as an asset, reading the basis ``venue_basis`` wrote.

``arbitrage_study`` runs :func:`trading_pipeline.discovery.arbitrage_study.arbitrage_study`
(walk-forward, test windows only, costs on) over the aligned Binance × Coinbase bars of the
basis file, writes the report as JSON beside it and shows what survives costs out of sample
(bot4, the arbitrage bot, stays in cash while nothing does).
"""

import json

import dagster as dg
from pydantic import Field

from trading_pipeline.backtest.metrics import json_safe
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.tables import table, tidy
from trading_pipeline.defs.venues.assets import (
    GROUP,
    KEY_PREFIX,
    BasisConfig,
    basis_path,
    parse_market,
    read_basis,
    venue_basis,
)
from trading_pipeline.defs.versions import RESEARCH, source_version
from trading_pipeline.discovery.arbitrage_study import arbitrage_study as run_study
from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_write_text

FOLD_COLUMNS = [
    "fold",
    "threshold_bps",
    "rebalance_bars",
    "max_use",
    "trades",
    "in_cash",
    "net_arb_pnl",
]


class ArbitrageStudyConfig(dg.Config):
    """Which basis file to study (the pair ``venue_basis`` compared) and how many folds."""

    a: str = Field(default=BasisConfig().a, description="venue a, VENUE:SYMBOL (as venue_basis)")
    b: str = Field(default=BasisConfig().b, description="venue b, VENUE:SYMBOL (as venue_basis)")
    interval: str = Field(default="1h", description="bar interval of the basis file")
    folds: int = Field(default=4, description="walk-forward folds (test windows)")


@dg.asset(
    key_prefix=KEY_PREFIX,
    deps=[venue_basis],
    group_name=GROUP,
    kinds={"python", "json"},
    code_version=source_version(
        __name__,
        "trading_pipeline.discovery.arbitrage_study",
        "trading_pipeline.discovery.multi_series",
        "trading_pipeline.strategies.arbitrage",
        "trading_pipeline.backtest.multi",
    ),
    owners=[RESEARCH],
)
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
        metadata=tidy(
            {
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
                "folds": table(
                    [
                        {
                            "fold": f["fold"] + 1,
                            "threshold_bps": f["params"]["threshold_bps"],
                            "rebalance_bars": f["params"]["rebalance_bars"],
                            "max_use": f["params"]["max_use"],
                            "trades": f["test"].get("trades"),
                            "in_cash": bool(f["cash"]),
                            "net_arb_pnl": None if f["cash"] else f["test"].get("net_arb_pnl"),
                        }
                        for f in report["folds"]
                    ],
                    FOLD_COLUMNS,
                    descriptions={
                        "in_cash": "nothing survived costs on the train window: the fold stays in cash",
                        "net_arb_pnl": "test window's arbitrage PnL net of fees, slippage, rebalancing",
                    },
                ),
            }
        )
    )
