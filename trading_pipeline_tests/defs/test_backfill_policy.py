"""A multi-year backfill of the history assets becomes one run per series, not one per month.

This calls the function Dagster's asset-backfill daemon uses to turn the requested partitions
into runs (``asset_backfill.py`` → ``build_run_requests_with_backfill_policies``).
"""

from collections.abc import Callable

import dagster as dg
import pytest
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from trading_pipeline.defs.history.assets import kline_csv, klines, raw_zips
from trading_pipeline.defs.history.checks import no_duplicate_bars
from trading_pipeline.defs.history.partitions import month_partitions, series_month_key
from trading_pipeline_tests.defs.conftest import BTC, ETH, HistoryKit

pytestmark = pytest.mark.slow  # Dagster instance runs


def test_five_years_of_two_series_backfill_in_two_runs(
    instance: dg.DagsterInstance, make_store: Callable[..., HistoryKit]
) -> None:
    months = [m for m in month_partitions.get_partition_keys() if "2019-01-01" <= m < "2024-07-01"]
    assert len(months) == 66
    graph = dg.Definitions(
        assets=[raw_zips, kline_csv, klines],
        asset_checks=[no_duplicate_bars],
        resources=make_store().resources,
    ).resolve_asset_graph()
    wanted = [
        AssetKeyPartitionKey(asset.key, str(series_month_key(series.key, month)))
        for asset in (raw_zips, kline_csv, klines)
        for series in (BTC, ETH)
        for month in months
    ]
    runs = build_run_requests_with_backfill_policies(wanted, graph, instance)
    assert len(runs) == 2
    ranges = sorted(
        (r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG])
        for r in runs
    )
    assert ranges == sorted(
        (str(series_month_key(s.key, months[0])), str(series_month_key(s.key, months[-1])))
        for s in (BTC, ETH)
    )
    for run in runs:
        assert set(run.asset_selection or []) == {raw_zips.key, kline_csv.key, klines.key}
