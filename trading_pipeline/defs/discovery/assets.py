"""Strategy discovery as assets, downstream of the history klines.

* ``strategy_results`` (family × series): walk-forward Optuna tuning of one family on one
  series, its out-of-sample result, logged as one MLflow run. Re-running one partition tops
  its studies up to the configured trials (the studies are resumable).
* ``performance_matrix``: every materialized study re-collected from the Optuna storage
  (deterministic; nothing pickled), split by the rules labeller's regimes.
* ``top_strategies``: the robustness ranking, also written to ``<data>/discovery/`` as JSON
  for the selector and the bots.
"""

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.metrics import json_safe
from trading_pipeline.defs.discovery.charts import heatmap_png
from trading_pipeline.defs.discovery.partitions import (
    SERIES_OF_KLINES,
    family_series,
    split_family_series,
)
from trading_pipeline.defs.discovery.portfolio import portfolio_results
from trading_pipeline.defs.features.assets import regime_periods
from trading_pipeline.defs.history.assets import klines
from trading_pipeline.defs.history.partitions import series_month_key
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.tables import artifact_image, image_md, rows_of, table, tidy, when
from trading_pipeline.defs.versions import RESEARCH, discovery_version
from trading_pipeline.discovery.batch import check_sampler
from trading_pipeline.discovery.calibration import NOISE_MAX_PBO
from trading_pipeline.discovery.catalog import best_per_regime
from trading_pipeline.discovery.gate import require_no_lookahead
from trading_pipeline.discovery.matrix import BENCHMARK, pivot
from trading_pipeline.discovery.matrix import performance_matrix as build_matrix
from trading_pipeline.discovery.ranking import RankingRule, rank, top
from trading_pipeline.discovery.report import (
    EXPERIMENT,
    DataProvenance,
    log_study,
    provenance_from_store,
)
from trading_pipeline.discovery.results import StudyResult, collect
from trading_pipeline.discovery.storage import redact
from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_path
from trading_pipeline.history.layout import Series
from trading_pipeline.history.manifest import Manifest
from trading_pipeline.links import md_link, mlflow_ui
from trading_pipeline.market.candles import CandleError, load_store
from trading_pipeline.regimes.stored import load_labels
from trading_pipeline.strategies.registry import get_family

GROUP = "discovery"
_HIVE_MONTH = re.compile(r"year=(\d{4})/month=(\d{2})")
LABELLER = "rules"  # the labeller regime_periods stores (its labels are read back here)
SUMMARY_METRICS = ("sharpe", "total_return", "max_drawdown", "trades", "exposure", "bars")
OWNERS = [RESEARCH]
# the built-in families' versions and code fingerprints, with the scoring code's source
CODE_VERSION = discovery_version(__name__, "trading_pipeline.discovery.catalog")


class TuneConfig(dg.Config):
    """How a study group is tuned (small defaults; raise ``trials`` for a real search)."""

    trials: int = Field(
        default=20,
        description="finished trials per fold (a target: a re-run tops up to it)",
    )
    folds: int = Field(default=4, description="walk-forward folds (test windows)")
    seed: int = Field(default=0, description="the sampler's seed")
    fee: float = Field(default=0.001, description="fee per side, as a fraction (0.001 = 0.1%)")
    slippage_bps: float = Field(default=2.0, description="slippage per fill, basis points")
    sampler: str = Field(
        default="tpe",
        description="tpe (learns from every trial), random, qmc (scrambled Sobol) or "
        "fast-random (random sets drawn and pruned without Optuna's per-trial objects: the "
        "fastest, thousands of trials/s)",
    )
    batch: int | None = Field(
        default=None,
        description="trials evaluated per fused call (0: one at a time through signals(); "
        "unset: 1 for tpe, 64 for the others); the study is the same for any value",
    )


class TopConfig(dg.Config):
    """The ranking rule's thresholds and how many strategies make the top."""

    top: int = Field(default=5, description="how many strategies make the top")
    min_trades: int = Field(default=10, description="fewest out-of-sample trades to be robust")
    dsr_level: float = Field(
        default=0.95, description="the deflated Sharpe probability a robust strategy reaches"
    )
    max_pbo: float = Field(
        default=NOISE_MAX_PBO,
        description="highest probability of backtest overfitting (calibrated: pure noise "
        "passes it 10% of the time at most)",
    )
    min_consistency: float = Field(
        default=0.5, description="lowest share of test folds with a positive return"
    )


def _bars(lake: DataLake, series: Series) -> pl.DataFrame:
    try:
        return load_store(
            lake.layout.history_dir,
            market=series.market,
            symbol=series.symbol,
            interval=series.interval,
        )
    except CandleError as exc:
        raise dg.Failure(description=f"{series.key}: {exc}") from exc


def _summary_table(result: StudyResult) -> dg.TableMetadataValue:
    cols = ["metric", "strategy", BENCHMARK]
    return table(
        rows_of(
            cols,
            ((k, result.metrics.get(k), result.bh_metrics.get(k)) for k in SUMMARY_METRICS),
        ),
        cols,
        descriptions={
            "metric": "out-of-sample measure (the concatenated test windows)",
            "strategy": f"{result.spec.family}, tuned walk-forward",
            BENCHMARK: "buy-and-hold over the same bars",
        },
    )


FOLD_DESCRIPTIONS = {
    "train_from": "first bar of the train window (open time, UTC)",
    "train_to": "last bar of the train window (open time, UTC)",
    "test_from": "first bar of the test window (open time, UTC)",
    "test_to": "last bar of the test window (open time, UTC)",
    "train_value": "the study's best objective on the train window (in sample)",
    "test_sharpe": "Sharpe of the test window (one account across folds)",
    "test_return": "return of the test window",
    "params": "the parameters the fold's study chose",
}


def fold_windows(result: StudyResult, bars: pl.DataFrame) -> dg.TableMetadataValue:
    """Each fold's train and test windows as UTC dates (first and last bar's open time; the
    windows are half-open bar ranges), its chosen parameters and test metrics."""
    times = bars.get_column("open_time").to_list()

    def span(window: tuple[int, int]) -> tuple[str, str]:
        start, stop = window
        return when(times[start]), when(times[max(start, stop - 1)])

    rows = []
    for f in result.folds:
        (train_from, train_to), (test_from, test_to) = span(f.train), span(f.test)
        rows.append(
            {
                "fold": f.index,
                "train_from": train_from,
                "train_to": train_to,
                "test_from": test_from,
                "test_to": test_to,
                "train_value": f.train_value,
                "test_sharpe": f.test_metrics.get("sharpe"),
                "test_return": f.test_metrics.get("total_return"),
                "params": f.params,
            }
        )
    return table(rows, ["fold", *FOLD_DESCRIPTIONS], descriptions=FOLD_DESCRIPTIONS)


@dg.asset(
    partitions_def=family_series,
    group_name=GROUP,
    kinds={"optuna", "mlflow"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    deps=[
        dg.AssetDep(klines, partition_mapping=SERIES_OF_KLINES),
        dg.AssetDep(regime_periods, partition_mapping=SERIES_OF_KLINES),
    ],
)
def strategy_results(
    context: dg.AssetExecutionContext,
    config: TuneConfig,
    lake: DataLake,
) -> dg.MaterializeResult:
    """One family tuned walk-forward on one series, judged out of sample, logged to MLflow."""
    family_name, series_key = split_family_series(context.partition_key)
    series = Series.parse(series_key)
    family = get_family(family_name)
    layout = lake.layout
    bars = _bars(lake, series)
    try:
        check_sampler(config.sampler, config.batch)
        spec = make_spec(
            bars,
            family,
            series=series.key,
            interval=series.interval,
            walk=WalkForward(folds=config.folds),
            costs=CostModel(fee=config.fee, slippage_bps=config.slippage_bps),
        )
        # the lookahead gate: a leaky family fails here, before any trial (cached per code)
        audit = require_no_lookahead(family, bars, cache_dir=layout.audits_dir, data=series.key)
        storage = lake.storage()
        run = tune(
            bars,
            family,
            spec=spec,
            storage=storage,
            n_trials=config.trials,
            seed=config.seed,
            sampler=config.sampler,
            ask=config.batch,
        )
        result = collect(bars, family, spec=spec, storage=storage)
    except UserInputError as exc:
        raise dg.Failure(description=f"{context.partition_key}: {exc}") from exc
    context.log.info(f"{spec.study_group}: {run.trials_run} new trials in {run.seconds:.1f} s")
    context.log.info(f"lookahead audit: {audit['summary']}")
    provenance = provenance_from_store(
        layout.history_dir, market=series.market, symbol=series.symbol, interval=series.interval
    )
    tracker = lake.tracker(EXPERIMENT)
    run_id = log_study(
        tracker,
        result,
        storage_url=layout.optuna_storage_url,
        provenance=provenance,
        extra_tags={
            "dagster_run_id": context.run.run_id,
            "dagster_partition": context.partition_key,
            **lake.dagster_tags(context.run.run_id, strategy_results.key, context.partition_key),
        },
    )
    pbo = None if result.pbo is None else result.pbo.pbo
    metadata: dict[str, dg.RawMetadataValue] = {
        "study": spec.study_group,
        "oos_sharpe": result.metrics["sharpe"],
        "oos_return": result.metrics["total_return"],
        "oos_max_drawdown": result.metrics["max_drawdown"],
        "oos_trades": int(result.metrics["trades"]),
        "bh_sharpe": result.bh_metrics["sharpe"],
        "bh_return": result.bh_metrics["total_return"],
        "dsr_probability": result.dsr.probability,
        "dsr_significant": result.dsr.significant(),
        "consistency": result.consistency,
        "n_trials": result.n_trials,
        "trials_run_now": run.trials_run,
        "summary": _summary_table(result),
        "folds": fold_windows(result, bars),
        "best_params": dg.MetadataValue.json(json_safe(result.best_params)),
        "spec": dg.MetadataValue.json(spec.to_json()),
        "optuna_storage": redact(layout.optuna_storage_url),
        "mlflow_tracking_uri": redact(tracker.tracking_uri),
        "mlflow_experiment_id": tracker.experiment_id,
        "mlflow_run_id": run_id,
        "mlflow_run": dg.MetadataValue.url(lake.run_link(tracker.experiment_id, run_id)),
        # the run's equity chart, shown inline from the MLflow UI (make mlflow)
        "oos_equity": artifact_image(
            mlflow_ui(lake.mlflow_ui_url, layout.mlflow_tracking_uri),
            run_id,
            "oos_equity.png",
            "out-of-sample equity (served by the MLflow UI)",
        ),
        **_data_partitions(lake, series, provenance),
    }
    if pbo is not None:
        metadata["pbo"] = pbo
    metadata.update(_by_regime(lake, result))
    return dg.MaterializeResult(metadata=tidy(metadata))


def _data_partitions(lake: DataLake, series: Series, provenance: DataProvenance) -> dict[str, Any]:
    """The klines months the study read, with the sha256 its provenance records (the
    manifest's, as the MLflow run's ``data_partitions.json`` lists them; the file's own when
    the manifest has no entry): ``data_partitions``, a table, and ``data_partitions_links``,
    each month a link to its Dagster partition (a table cell cannot hold a link)."""
    periods = {
        key: entry.period[:7]
        for key, entry in Manifest(lake.layout.history.manifest_path).load().items()
        if entry.period
    }
    by_month: dict[str, str] = {}
    for key, digest in provenance.checksums.items():
        hive = _HIVE_MONTH.search(key)
        month = periods.get(key) or (f"{hive[1]}-{hive[2]}" if hive else None)
        if month is not None:
            by_month[month] = digest
    rows, links = [], []
    for month in sorted(by_month):
        partition = str(series_month_key(series.key, f"{month}-01"))
        rows.append({"month": month, "klines_partition": partition, "sha256": by_month[month]})
        url = lake.dagster_asset_link(klines.key, partition)
        links.append(f"- {md_link(f'{series.key} {month}', url)}")
    return {
        "data_partitions": table(
            rows,
            ["month", "klines_partition", "sha256"],
            descriptions={"klines_partition": "the history/klines partition the study read"},
        ),
        "data_partitions_links": dg.MetadataValue.md("\n".join(links) or "none"),
    }


def _by_regime(lake: DataLake, result: StudyResult) -> dict[str, Any]:
    """The study's out-of-sample result split by the labels ``regime_periods`` stored for its
    series (nothing when none are stored yet)."""
    labels = load_labels(lake.layout.features_dir, result.spec.series)
    if labels is None:
        return {"regime_labels": "none stored for this series: materialize regime_periods"}
    rows = build_matrix([result], {result.spec.series: labels})
    cols = ["strategy", "regime", "bars", "sharpe", "total_return", "max_drawdown", "trades"]
    return {
        "regime_labels": f"{labels.height} bars stored by regime_periods",
        "oos_by_regime": table(rows, cols),
    }


@dataclass(frozen=True)
class Tuned:
    """A materialized study group the catalog found usable, with its bars and MLflow run."""

    partition: str
    result: StudyResult
    bars: pl.DataFrame
    mlflow_run_id: str | None


def _meta_value(metadata: Mapping[str, Any], name: str) -> Any:
    entry = metadata.get(name)
    return None if entry is None else entry.value


def collect_materialized(context: dg.AssetExecutionContext, lake: DataLake) -> list[Tuned]:
    """The study group of every materialized ``strategy_results`` and ``portfolio_results``
    partition, as far as the catalog finds it usable (family version and bars unchanged since
    tuning); the others are skipped with a warning: re-run them."""
    instance = context.instance
    by_group: dict[str, tuple[str, str | None]] = {}
    for key, partition in [
        (asset, partition)
        for asset in (strategy_results.key, portfolio_results.key)
        for partition in sorted(instance.get_materialized_partitions(asset))
    ]:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        materialization = records[0].asset_materialization if records else None
        if materialization is None:
            continue
        group = _meta_value(materialization.metadata, "study")
        if group is None:
            context.log.warning(f"{partition}: no study recorded; re-materialize it")
            continue
        run_id = _meta_value(materialization.metadata, "mlflow_run_id")
        by_group[str(group)] = (partition, None if run_id is None else str(run_id))
    usable = lake.catalog().usable(by_group)
    for reason in usable.skipped:
        context.log.warning(f"skipped {reason}")
    out = [
        Tuned(by_group[e.group][0], e.result, e.bars, by_group[e.group][1]) for e in usable.entries
    ]
    if not out:
        raise dg.Failure(
            description="no usable strategy_results or portfolio_results partition: materialize some"
        )
    return out


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[strategy_results, portfolio_results, regime_periods],
    code_version=CODE_VERSION,
    owners=OWNERS,
)
def performance_matrix(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Out-of-sample Sharpe, return, drawdown, trades and exposure per strategy × regime, the
    regimes being the labels ``regime_periods`` stored for each series."""
    tuned = collect_materialized(context, lake)
    labels: dict[str, pl.DataFrame] = {}
    unlabelled = []
    for series in sorted({t.result.spec.series for t in tuned}):
        stored = load_labels(lake.layout.features_dir, series)
        if stored is None:
            unlabelled.append(series)
        else:
            labels[series] = stored
    if unlabelled:
        context.log.warning(
            f"no regime labels stored for {', '.join(unlabelled)}: their bars count as "
            "unlabelled (materialize regime_periods for those series)"
        )
    matrix = build_matrix([t.result for t in tuned], labels)
    path = lake.layout.performance_matrix_path
    with atomic_path(path) as tmp:
        matrix.write_parquet(tmp)
    wide = pivot(matrix, "sharpe")
    best = best_per_regime(matrix)
    png = heatmap_png(matrix)
    run_id, heatmap = _heatmap_run(context, lake, png)
    return dg.MaterializeResult(
        metadata=tidy(
            {
                "studies": len(tuned),
                "series": ", ".join(sorted({t.result.spec.series for t in tuned})),
                "labeller": LABELLER,
                "labels_from": "regime_periods (stored labels)",
                "series_without_labels": ", ".join(unlabelled) or "none",
                "rows": matrix.height,
                "path": dg.MetadataValue.path(str(path)),
                # inline on the asset page (a short Markdown entry: the MLflow UI serves the
                # image); the same chart self-contained, one click away, for when it is down
                "heatmap": heatmap,
                "heatmap_png": image_md(png, "sharpe by regime"),
                "mlflow_run_id": run_id,
                "sharpe_by_regime": table(wide),
                "best_per_regime": table(best),
                "matrix": table(matrix),
            }
        )
    )


HEATMAP = "sharpe_by_regime.png"


def _heatmap_run(
    context: dg.AssetExecutionContext, lake: DataLake, png: bytes
) -> tuple[str, dg.MarkdownMetadataValue]:
    """The heatmap logged to an MLflow run of its own (``performance_matrix``, linked to this
    Dagster run), and the short Markdown entry showing it from the MLflow UI: the asset page
    renders Markdown inline only under 1,000 characters, which no PNG data URI is."""
    import tempfile
    from pathlib import Path

    tracker = lake.tracker(EXPERIMENT)
    run_id = tracker.start_run(
        "performance_matrix",
        tags=lake.dagster_tags(context.run.run_id, context.asset_key),
        description="Out-of-sample Sharpe per strategy × regime (the performance_matrix asset).",
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / HEATMAP
        path.write_bytes(png)
        tracker.log_artifact(run_id, path)
    tracker.end_run(run_id)
    ui = mlflow_ui(lake.mlflow_ui_url, lake.layout.mlflow_tracking_uri)
    alt = "out-of-sample Sharpe by regime (served by the MLflow UI; heatmap_png holds it too)"
    return run_id, artifact_image(ui, run_id, HEATMAP, alt)


TOP_COLUMNS = (
    "rank",
    "strategy",
    "series",
    "robust",
    "verdict",
    "dsr_probability",
    "pbo",
    "consistency",
    "oos_sharpe",
    "oos_return",
    "trades",
    "bh_sharpe",
    "n_trials",
)


@dg.asset(
    group_name=GROUP,
    kinds={"python", "json"},
    deps=[strategy_results, portfolio_results],
    code_version=CODE_VERSION,
    owners=OWNERS,
)
def top_strategies(
    context: dg.AssetExecutionContext,
    config: TopConfig,
    lake: DataLake,
) -> dg.MaterializeResult:
    """The strategies ranked by robustness (deflated Sharpe over every trial, PBO, trades,
    consistency), written to ``<data>/discovery/top_strategies.json``."""
    tuned = collect_materialized(context, lake)
    rule = RankingRule(
        min_trades=config.min_trades,
        dsr_level=config.dsr_level,
        max_pbo=config.max_pbo,
        min_consistency=config.min_consistency,
    )
    results = [t.result for t in tuned]
    trials = lake.catalog().trials_by_series()  # every trial tried on each series
    ranked = rank(results, rule, trials=trials)
    best = top(results, config.top, rule, trials=trials)
    by_study = {t.result.spec.study_group: t for t in tuned}

    def entry(row: dict[str, Any]) -> dict[str, Any]:
        t = by_study[row["study"]]
        return {
            **row,
            "interval": t.result.spec.interval,
            "params": t.result.best_params,
            "mlflow_run_id": t.mlflow_run_id,
            "dagster_partition": t.partition,
        }

    doc = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dagster_run_id": context.run.run_id,
        "rule": asdict(rule),
        "candidates": ranked.height,
        "top": [entry(r) for r in best.iter_rows(named=True)],
        "ranked": [entry(r) for r in ranked.iter_rows(named=True)],
    }
    path = lake.catalog().write_top(json_safe(doc))
    cols = [c for c in TOP_COLUMNS if c in ranked.columns]
    return dg.MaterializeResult(
        metadata=tidy(
            {
                "candidates": ranked.height,
                "in_top": best.height,
                "robust": int(ranked["robust"].sum()),
                "path": dg.MetadataValue.path(str(path)),
                "top": table(best, cols),
                "ranking": table(ranked, cols),
            }
        )
    )
