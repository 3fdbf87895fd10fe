"""Quality checks on the klines partitions, delegating to ``market.quality``.

Duplicates, OHLC violations and misaligned bars are blocking: a failure stops every asset
downstream of klines in the run. Gaps are reported, never invented, so that check only warns.
"""

from collections.abc import Callable

import dagster as dg
import polars as pl

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


def evaluate(
    partition_keys: list[str], lake: DataLake, finder: Finder
) -> tuple[int, dict[str, int], pl.DataFrame | None]:
    """(findings, findings by partition, sample of the first offending rows) over the keys."""
    layout = lake.layout.history
    total, by_partition, sample = 0, {}, None
    for key in partition_keys:
        series, year, month = split_key(key)
        path = layout.parquet_path(series, year, month)
        if not path.exists():
            continue
        found = finder(pl.read_parquet(path), series.interval)
        by_partition[key] = found.height
        total += found.height
        if found.height and sample is None:
            sample = found.head(SAMPLE_ROWS)
    return total, by_partition, sample


def _result(
    context: dg.AssetCheckExecutionContext,
    lake: DataLake,
    finder: Finder,
    what: str,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    keys = list(context.partition_keys)
    total, by_partition, sample = evaluate(keys, lake, finder)
    bad = {k: n for k, n in by_partition.items() if n}
    metadata: dict[str, dg.RawMetadataValue] = {
        what: total,
        "partitions_checked": len(by_partition),
        "partitions_failing": len(bad),
    }
    if bad:
        metadata["failing"] = ", ".join(sorted(bad)[:20])
    if sample is not None:
        metadata["sample"] = dg.MetadataValue.md(frame_preview(sample, SAMPLE_ROWS))
    return dg.AssetCheckResult(passed=total == 0, severity=severity, metadata=metadata)


@dg.asset_check(asset=klines, name=DUPLICATES, partitions_def=series_month, blocking=True)
def no_duplicate_bars(
    context: dg.AssetCheckExecutionContext, lake: DataLake
) -> dg.AssetCheckResult:
    """No open_time appears twice in a month's klines."""
    return _result(context, lake, lambda df, _i: quality.find_duplicates(df), "duplicate_rows")


@dg.asset_check(asset=klines, name=OHLC, partitions_def=series_month, blocking=True)
def ohlc_consistent(context: dg.AssetCheckExecutionContext, lake: DataLake) -> dg.AssetCheckResult:
    """Low ≤ open, close ≤ high; prices present; volumes not negative."""
    return _result(context, lake, lambda df, _i: quality.find_ohlc_violations(df), "violations")


@dg.asset_check(asset=klines, name=ALIGNED, partitions_def=series_month, blocking=True)
def bars_on_interval_grid(
    context: dg.AssetCheckExecutionContext, lake: DataLake
) -> dg.AssetCheckResult:
    """Every bar opens on the interval grid and closes one interval (less 1 ms/µs) later."""
    return _result(context, lake, quality.find_off_grid, "misaligned_bars")


@dg.asset_check(asset=klines, name=GAPS, partitions_def=series_month, blocking=False)
def no_gaps(context: dg.AssetCheckExecutionContext, lake: DataLake) -> dg.AssetCheckResult:
    """Missing bars (exchange maintenance gaps are permanent): a warning, never a stop."""
    return _result(context, lake, quality.find_gaps, "gaps", severity=dg.AssetCheckSeverity.WARN)
