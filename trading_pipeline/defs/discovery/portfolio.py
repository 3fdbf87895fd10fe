"""Portfolio families as an asset: each one tuned walk-forward on the universe of coins.

``portfolio_results`` (one partition per portfolio family) joins the universe's stored hourly
klines into one frame (series ``universe-BTC+ETH+BNB-1h``), refuses a leaky family at the
lookahead gate, tunes it in the same Optuna storage as ``strategy_results`` and judges it out of
sample, deflated for every trial. The catalog finds its study group like any other, so
``performance_matrix`` and ``top_strategies`` rank it beside the single-series families (no bot
runs a portfolio family: none lists one).
"""

import dagster as dg
from pydantic import Field

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.portfolio import BASKET
from trading_pipeline.defs.features.assets import regime_periods
from trading_pipeline.defs.history.assets import klines
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.tables import table, tidy
from trading_pipeline.defs.versions import RESEARCH, discovery_version
from trading_pipeline.discovery.portfolio_study import oos_benchmarks, tune_universe
from trading_pipeline.discovery.storage import redact
from trading_pipeline.discovery.tuning import WalkForward
from trading_pipeline.discovery.universe_bars import load_universe, universe_series
from trading_pipeline.errors import UserInputError
from trading_pipeline.settings import Settings
from trading_pipeline.strategies.registry import PORTFOLIO_FAMILIES

GROUP = "discovery"  # as strategy_results
OWNERS = [RESEARCH]
portfolio_partitions = dg.StaticPartitionsDefinition(sorted(PORTFOLIO_FAMILIES))
CODE_VERSION = discovery_version(
    __name__,
    "trading_pipeline.discovery.portfolio_study",
    "trading_pipeline.discovery.universe_bars",
    "trading_pipeline.discovery.portfolio_eval",
    "trading_pipeline.backtest.portfolio",
    "trading_pipeline.strategies.universe",
    *sorted({type(f).__module__ for f in PORTFOLIO_FAMILIES.values()}),
)
METRICS = ("sharpe", "total_return", "max_drawdown")


class PortfolioConfig(dg.Config):
    """How a portfolio family is tuned on the universe (small defaults, as strategy_results)."""

    trials: int = Field(default=20, description="finished trials per fold (a re-run tops up)")
    folds: int = Field(default=4, description="walk-forward folds (test windows)")
    seed: int = Field(default=0, description="the sampler's seed")
    fee: float = Field(default=0.001, description="fee per side, as a fraction (0.001 = 0.1%)")
    slippage_bps: float = Field(default=2.0, description="slippage per fill, basis points")
    universe: list[str] | None = Field(
        default=None,
        description="the USDT-quoted symbols (unset: TP_UNIVERSE, by default BTC, ETH, BNB)",
    )


@dg.asset(
    partitions_def=portfolio_partitions,
    group_name=GROUP,
    kinds={"optuna", "numba"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    # every month of the universe's series (which series: the settings' universe)
    deps=[
        dg.AssetDep(klines, partition_mapping=dg.AllPartitionMapping()),
        dg.AssetDep(regime_periods, partition_mapping=dg.AllPartitionMapping()),
    ],
)
def portfolio_results(
    context: dg.AssetExecutionContext, config: PortfolioConfig, lake: DataLake
) -> dg.MaterializeResult:
    """One portfolio family tuned walk-forward on the universe, judged out of sample beside
    the equal-weight basket bought once."""
    family = PORTFOLIO_FAMILIES[context.partition_key]
    settings = Settings.from_env()
    layout = lake.layout
    try:
        key, coins = universe_series(
            config.universe or settings.universe,
            market=settings.market,
            interval=settings.interval,
        )
        frame = load_universe(layout.history_dir, key)
        costs = CostModel(fee=config.fee, slippage_bps=config.slippage_bps)
        # the lookahead gate runs inside: a leaky family is refused before any trial
        result = tune_universe(
            frame,
            family,
            series=key,
            interval=settings.interval,
            storage=lake.storage(),
            n_trials=config.trials,
            walk=WalkForward(folds=config.folds),
            costs=costs,
            seed=config.seed,
            audit_cache=layout.audits_dir,
        )
        basket = oos_benchmarks(frame, result, costs=costs)[BASKET]
    except UserInputError as exc:
        raise dg.Failure(description=f"{context.partition_key}: {exc}") from exc
    context.log.info(f"{result.spec.study_group}: {result.n_trials} trials on {key}")
    cols = ["metric", "strategy", BASKET]
    rows = [
        {"metric": m, "strategy": result.metrics.get(m), BASKET: basket.metrics.get(m)}
        for m in METRICS
    ]
    return dg.MaterializeResult(
        metadata=tidy(
            {
                "study": result.spec.study_group,
                "universe": key,
                "coins": ", ".join(s.key for s in coins.values()),
                "bars": frame.height,
                "oos_sharpe": result.metrics["sharpe"],
                "oos_return": result.metrics["total_return"],
                "oos_max_drawdown": result.metrics["max_drawdown"],
                "basket_sharpe": basket.metrics["sharpe"],
                "basket_return": basket.metrics["total_return"],
                "dsr_probability": result.dsr.probability,
                "n_trials": result.n_trials,
                "summary": table(
                    rows,
                    cols,
                    descriptions={
                        "metric": "out-of-sample measure (the concatenated test windows)",
                        "strategy": f"{family.name}, tuned walk-forward",
                        BASKET: "the coins bought once in equal weights, same bars and costs",
                    },
                ),
                "optuna_storage": redact(layout.optuna_storage_url),
            }
        )
    )
