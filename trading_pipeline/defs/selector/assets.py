"""The selector's training set and model as assets, downstream of discovery.

* ``selector_training_set``: every materialized ``strategy_results`` study re-collected from
  the Optuna storage (as ``performance_matrix`` does), the fleet's candidates picked from them
  on their returns before the held-out period (``candidate_cutoff`` in the metadata),
  daily decision rows (state at the window's start → best candidate net of costs), written to
  ``<data>/selector/training_set.{parquet,json}``.
* ``selector_model``: purged CV model choice, one held-out period, the baselines beside it,
  registered in MLflow as ``strategy-selector``; the promotion gate's verdict is the asset
  check ``promotion_gate`` (a refused model is a WARN: registered, not champion).
"""

import dagster as dg
import polars as pl
from pydantic import Field

from trading_pipeline.bots.spec import current_fleet
from trading_pipeline.defs.discovery.assets import collect_materialized, strategy_results
from trading_pipeline.defs.features.assets import fear_greed, regime_periods
from trading_pipeline.defs.features.news import news_sentiment
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.tables import image_md, rows_of, table, tidy
from trading_pipeline.defs.versions import RESEARCH, source_version
from trading_pipeline.errors import UserInputError
from trading_pipeline.links import md_link
from trading_pipeline.market.sentiment import read_fear_greed
from trading_pipeline.news.store import read_items, stored_days
from trading_pipeline.regimes.stored import load_labels

GROUP = "selector"
EXPERIMENT = "strategy-selector"
GATE_CHECK = "promotion_gate"
OWNERS = [RESEARCH]
_DATASET = "trading_pipeline.selector.dataset"


class TrainingSetConfig(dg.Config):
    """Which candidates and decision windows the training rows use."""

    every: str = Field(default="1d", description="decision window: one row per window (1d, 4h …)")
    max_candidates: int = Field(default=8, description="most candidate strategies (cash aside)")
    holdout_fraction: float = Field(
        default=0.25,
        description="the share the model will hold out: candidates are chosen on the returns "
        "before it",
    )


class SelectorModelConfig(dg.Config):
    """How the model is chosen and judged."""

    holdout_fraction: float = Field(
        default=0.25, description="the last share of the rows, held out and touched once"
    )
    cv_splits: int = Field(default=4, description="purged walk-forward CV splits")
    embargo: int = Field(default=2, description="rows dropped after each CV test split")
    with_gradient_boosting: bool = Field(
        default=False, description="also try HistGradientBoosting (slow to predict)"
    )
    min_improvement: float = Field(
        default=0.0,
        description="how much the new version must beat the champion by (held-out net return)",
    )


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[strategy_results, regime_periods, fear_greed, news_sentiment],
    code_version=source_version(
        __name__, _DATASET, "trading_pipeline.selector.state", "trading_pipeline.news.aggregate"
    ),
    owners=OWNERS,
)
def selector_training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    lake: DataLake,
) -> dg.MaterializeResult:
    """Decision rows from discovery's out-of-sample returns: state at each window's start
    (with the stored Fear & Greed index when ``fear_greed`` was materialized, and the news
    sentiment features when ``news_sentiment`` stored any day), regimes of
    record from ``regime_periods``' stored labels, label = the candidate (or cash) with the best
    net return over the window."""
    from trading_pipeline.selector.dataset import build_dataset

    tuned = collect_materialized(context, lake)
    bars: dict[str, pl.DataFrame] = {}
    for t in tuned:
        key = t.result.spec.series
        if key not in bars or bars[key].height < t.bars.height:
            bars[key] = t.bars
    stored = {k: load_labels(lake.layout.features_dir, k) for k in sorted(bars)}
    regimes = {k: v for k, v in stored.items() if v is not None}
    fng = read_fear_greed(lake.layout.feature_path("fear_greed"))
    news = read_items(lake.layout)
    news_days = stored_days(lake.layout)
    regimes_from = {k: "regime_periods" if k in regimes else "labelled here" for k in stored}
    provenance = {
        "regime_labels": regimes_from,
        "fear_greed": "stored" if fng is not None else "not materialized",
        "news_sentiment": (
            f"stored: {news.height} items, {len(news_days)} days "
            f"({news_days[0]} .. {news_days[-1]})"
            if news is not None
            else "not materialized"
        ),
        "partitions": [t.partition for t in tuned],
        "discovery_mlflow_runs": {t.partition: t.mlflow_run_id for t in tuned},
        "dagster_run_id": context.run.run_id,
    }
    try:
        ds = build_dataset(
            [t.result for t in tuned],
            bars,
            every=config.every,
            max_candidates=config.max_candidates,
            provenance=provenance,
            holdout_fraction=config.holdout_fraction,
            fleet=current_fleet().bots,
            fear_greed=fng,
            regime_labels=regimes,
            news=news,
        )
    except UserInputError as exc:
        raise dg.Failure(description=f"selector training set: {exc}") from exc
    path = ds.save(lake.layout.selector_dir)
    s = ds.summary()
    return dg.MaterializeResult(
        metadata=tidy(
            {
                "rows": ds.n,
                "first_decision": s["first_decision"],
                "last_decision": s["last_decision"],
                "features": len(ds.feature_names),
                "series": ", ".join(ds.series),
                "switch_cost_per_side": ds.switch_cost,
                "candidate_selection": str(ds.selection.get("rule", "")),
                "candidate_cutoff": str(ds.selection.get("cutoff", "")),
                "path": dg.MetadataValue.path(str(path)),
                "candidates": table(
                    [
                        {
                            "candidate": c.id,
                            "study": ds.studies.get(c.id, "-"),
                            "best_windows": s["label_counts"].get(c.id, 0),
                        }
                        for c in ds.candidates
                    ],
                    ["candidate", "study", "best_windows"],
                    descriptions={
                        "best_windows": "decision windows where it did best, net of costs"
                    },
                ),
                "partitions": ", ".join(provenance["partitions"]),
                "discovery_runs": table(
                    [
                        {"study_partition": t.partition, "mlflow_run_id": t.mlflow_run_id or "-"}
                        for t in tuned
                    ],
                    ["study_partition", "mlflow_run_id"],
                ),
                "discovery_run_links": dg.MetadataValue.md(
                    "\n".join(
                        f"- {md_link(t.partition, lake.dagster_asset_link(strategy_results.key, t.partition))}"
                        + (
                            f" · {md_link('MLflow run', lake.run_link(None, t.mlflow_run_id))}"
                            if t.mlflow_run_id
                            else ""
                        )
                        for t in tuned
                    )
                ),
                "regimes_from": ", ".join(f"{k}: {v}" for k, v in regimes_from.items()),
                "fear_greed": str(provenance["fear_greed"]),
                "news_sentiment": str(provenance["news_sentiment"]),
            }
        )
    )


@dg.asset(
    group_name=GROUP,
    kinds={"scikitlearn", "mlflow"},
    deps=[selector_training_set],
    code_version=source_version(
        __name__,
        _DATASET,
        "trading_pipeline.selector.train",
        "trading_pipeline.selector.model",
        "trading_pipeline.selector.cv",
        "trading_pipeline.selector.baselines",
    ),
    owners=OWNERS,
    check_specs=[
        dg.AssetCheckSpec(
            GATE_CHECK,
            asset="selector_model",
            description="the new version beats the champion on the same held-out period",
        )
    ],
)
def selector_model(
    context: dg.AssetExecutionContext, config: SelectorModelConfig, lake: DataLake
) -> dg.MaterializeResult:
    """The selector trained, judged on its held-out period beside the baselines, registered
    as ``strategy-selector``; ``champion`` moves only through the promotion gate."""
    from trading_pipeline.selector.dataset import SelectorDataset
    from trading_pipeline.selector.model import DEFAULT_CONFIGS, GRADIENT_BOOSTING
    from trading_pipeline.selector.train import (
        COMPARISON_HEADER,
        TrainSettings,
        confusion_png,
        train,
    )

    try:
        ds = SelectorDataset.load(lake.layout.selector_dir)
    except UserInputError as exc:
        raise dg.Failure(description=str(exc)) from exc
    configs = DEFAULT_CONFIGS + ((GRADIENT_BOOSTING,) if config.with_gradient_boosting else ())
    settings = TrainSettings(
        holdout_fraction=config.holdout_fraction,
        n_splits=config.cv_splits,
        embargo=config.embargo,
        configs=configs,
        min_improvement=config.min_improvement,
    )
    registry = lake.registry(EXPERIMENT)
    try:
        report = train(
            ds,
            registry=registry,
            settings=settings,
            tags={
                "dagster_run_id": context.run.run_id,
                **lake.dagster_tags(context.run.run_id, context.asset_key),
            },
            dataset_source=lake.layout.selector_dir,
        )
    except UserInputError as exc:
        raise dg.Failure(description=f"selector model: {exc}") from exc
    gate = report.gate
    assert gate is not None and report.version is not None
    image = image_md(confusion_png(*report.confusion), "confusion matrix")
    comparison = table(rows_of(COMPARISON_HEADER, report.comparison_rows()), COMPARISON_HEADER)
    context.log.info(f"strategy-selector v{report.version}: {gate.reason}")
    gate_meta: dict[str, dg.RawMetadataValue] = {
        "reason": gate.reason,
        "candidate_version": report.version,
        "candidate_heldout_net_return": report.holdout["selector"]["net_return"],
        "champion_rescored": report.champion_rescored,
    }
    if gate.comparison.get("champion") is not None:
        gate_meta["champion_heldout_net_return"] = float(gate.comparison["champion"])
    if gate.comparison.get("champion_version") is not None:
        gate_meta["champion_version"] = int(gate.comparison["champion_version"])
    return dg.MaterializeResult(
        metadata=tidy(
            {
                "model_name": report.model.info.get("name", "strategy-selector"),
                "model_version": report.version,
                "model": dg.MetadataValue.url(
                    lake.model_link(report.model.info.get("name", EXPERIMENT), report.version)
                ),
                "mlflow_run_id": report.run_id or "",
                "mlflow_run": dg.MetadataValue.url(
                    lake.run_link(registry.experiment_id, report.run_id or "")
                ),
                "promoted": gate.promote,
                "gate_reason": gate.reason,
                "beats_baselines": report.beats_baselines,
                "best_baseline": report.best_baseline or "",
                **(
                    {
                        "policy_version": report.policy_version,
                        "policy_promoted": bool(report.policy_gate and report.policy_gate.promote),
                        "policy_reason": report.policy_gate.reason if report.policy_gate else "",
                    }
                    if report.policy_version is not None
                    else {}
                ),
                "config": report.config.label,
                "holdout": f"{report.holdout_start} .. {report.holdout_end}",
                "rows_development": report.n_development,
                "rows_holdout": report.n_holdout,
                "heldout_net_return": report.holdout["selector"]["net_return"],
                "confusion_matrix": image,
                "comparison": comparison,
                "cv": table(
                    [
                        {
                            "config": r["config"],
                            "cv_net_return": r["net_return"],
                            "cv_log_loss": r["log_loss"],
                            "splits": r["splits"],
                        }
                        for r in report.cv
                    ],
                    ["config", "cv_net_return", "cv_log_loss", "splits"],
                ),
            }
        ),
        check_results=[
            dg.AssetCheckResult(
                check_name=GATE_CHECK,
                passed=gate.promote,
                severity=dg.AssetCheckSeverity.WARN,
                metadata=tidy(gate_meta),
            )
        ],
    )
