"""Quality checks on the klines partitions, delegating to ``market.quality``.

Duplicates, OHLC violations and misaligned bars are blocking: a failure stops every asset
downstream of klines in the run. Gaps are reported, never invented, so that check only warns.

In a ranged run (the single-run backfill) Dagster plans each check once per month but records
the check's returned result without a partition, so every month would show the check as
skipped. Each month's own result is therefore logged as an ``AssetCheckEvaluation`` for its
partition (pointing at that month's materialization); the returned result sums up the range
and keeps the blocking behaviour for the run.
"""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import polars as pl
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from trading_pipeline.defs.history.assets import klines
from trading_pipeline.defs.history.metadata import frame_preview
from trading_pipeline.defs.history.partitions import series_month, split_key
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.market import quality

DUPLICATES = "no_duplicate_bars"
OHLC = "ohlc_consistent"
ALIGNED = "bars_on_interval_grid"
GAPS = "no_gaps"
SAMPLE_ROWS = 5

Finder = Callable[[pl.DataFrame, str], pl.DataFrame]


def evaluate_months(
    partition_keys: list[str], lake: DataLake, finder: Finder
) -> dict[str, pl.DataFrame | None]:
    """The offending rows of each month (None: no klines file for that month)."""
    layout = lake.layout.history
    out: dict[str, pl.DataFrame | None] = {}
    for key in partition_keys:
        series, year, month = split_key(key)
        path = layout.parquet_path(series, year, month)
        out[key] = finder(pl.read_parquet(path), series.interval) if path.exists() else None
    return out


def evaluate(
    partition_keys: list[str], lake: DataLake, finder: Finder
) -> tuple[int, dict[str, int], pl.DataFrame | None]:
    """(findings, findings by partition, sample of the first offending rows) over the keys."""
    return _summed(evaluate_months(partition_keys, lake, finder))


def _summed(
    per_month: dict[str, pl.DataFrame | None],
) -> tuple[int, dict[str, int], pl.DataFrame | None]:
    found = {k: f for k, f in per_month.items() if f is not None}
    by_partition = {k: f.height for k, f in found.items()}
    sample = next((f.head(SAMPLE_ROWS) for f in found.values() if f.height), None)
    return sum(by_partition.values()), by_partition, sample


@dataclass(frozen=True)
class MonthCheck:
    """One klines check: what it finds in a month's bars and how a finding weighs."""

    name: str
    finder: Finder
    what: str  # the metadata label of the count of findings
    severity: dg.AssetCheckSeverity
    blocking: bool


DUPLICATES_CHECK = MonthCheck(
    DUPLICATES,
    lambda df, _i: quality.find_duplicates(df),
    "duplicate_rows",
    dg.AssetCheckSeverity.ERROR,
    True,
)
OHLC_CHECK = MonthCheck(
    OHLC,
    lambda df, _i: quality.find_ohlc_violations(df),
    "violations",
    dg.AssetCheckSeverity.ERROR,
    True,
)
ALIGNED_CHECK = MonthCheck(
    ALIGNED, quality.find_off_grid, "misaligned_bars", dg.AssetCheckSeverity.ERROR, True
)
GAPS_CHECK = MonthCheck(GAPS, quality.find_gaps, "gaps", dg.AssetCheckSeverity.WARN, False)
MONTH_CHECKS = (DUPLICATES_CHECK, OHLC_CHECK, ALIGNED_CHECK, GAPS_CHECK)


def month_evaluation(
    check: MonthCheck,
    partition: str,
    found: pl.DataFrame | None,
    target: AssetCheckEvaluationTargetMaterializationData | None,
) -> dg.AssetCheckEvaluation:
    """The check's result for one month, for that month's partition (a ranged run logs one per
    month; ``import freqtrade`` reports them without a run)."""
    metadata: dict[str, dg.RawMetadataValue] = {check.what: 0 if found is None else found.height}
    if found is None:
        metadata["note"] = "no klines file for this month"
    elif found.height:
        metadata["sample"] = frame_preview(found.head(SAMPLE_ROWS))
    return dg.AssetCheckEvaluation(
        asset_key=klines.key,
        check_name=check.name,
        passed=found is None or found.height == 0,
        metadata=metadata,
        target_materialization_data=target,
        severity=check.severity,
        blocking=check.blocking,
        partition=partition,
    )


def latest_materialization(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The month's latest materialization, the one its check result is about."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    r = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        run_id=r.event_log_entry.run_id, storage_id=r.storage_id, timestamp=r.timestamp
    )


def _result(
    context: dg.AssetCheckExecutionContext, lake: DataLake, check: MonthCheck
) -> dg.AssetCheckResult:
    keys = list(context.partition_keys)
    per_month = evaluate_months(keys, lake, check.finder)
    if not context.has_partition_key:  # a range: each month gets its own result too
        for key, found in per_month.items():
            target = latest_materialization(context.instance, klines.key, key)
            event = month_evaluation(check, key, found, target)
            # log_event takes check evaluations (its annotation lists only the older events)
            context.op_execution_context.log_event(event)  # type: ignore[arg-type]
    total, by_partition, sample = _summed(per_month)
    bad = {k: n for k, n in by_partition.items() if n}
    metadata: dict[str, dg.RawMetadataValue] = {
        check.what: total,
        "partitions_checked": len(by_partition),
        "partitions_failing": len(bad),
    }
    if bad:
        metadata["failing"] = ", ".join(sorted(bad)[:20])
    if sample is not None:
        metadata["sample"] = frame_preview(sample, SAMPLE_ROWS)
    return dg.AssetCheckResult(passed=total == 0, severity=check.severity, metadata=metadata)


@dg.asset_check(asset=klines, name=DUPLICATES, partitions_def=series_month, blocking=True)
def no_duplicate_bars(
    context: dg.AssetCheckExecutionContext, lake: DataLake
) -> dg.AssetCheckResult:
    """No open_time appears twice in a month's klines."""
    return _result(context, lake, DUPLICATES_CHECK)


@dg.asset_check(asset=klines, name=OHLC, partitions_def=series_month, blocking=True)
def ohlc_consistent(context: dg.AssetCheckExecutionContext, lake: DataLake) -> dg.AssetCheckResult:
    """Low ≤ open, close ≤ high; prices present; volumes not negative."""
    return _result(context, lake, OHLC_CHECK)


@dg.asset_check(asset=klines, name=ALIGNED, partitions_def=series_month, blocking=True)
def bars_on_interval_grid(
    context: dg.AssetCheckExecutionContext, lake: DataLake
) -> dg.AssetCheckResult:
    """Every bar opens on the interval grid and closes one interval (less 1 ms/µs) later."""
    return _result(context, lake, ALIGNED_CHECK)


@dg.asset_check(asset=klines, name=GAPS, partitions_def=series_month, blocking=False)
def no_gaps(context: dg.AssetCheckExecutionContext, lake: DataLake) -> dg.AssetCheckResult:
    """Missing bars (exchange maintenance gaps are permanent): a warning, never a stop."""
    return _result(context, lake, GAPS_CHECK)
