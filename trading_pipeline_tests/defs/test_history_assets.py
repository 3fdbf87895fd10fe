"""The history assets, materialized in-process against a local Binance Vision mirror."""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from trading_pipeline.defs.history.assets import kline_csv, klines, raw_zips
from trading_pipeline.defs.history.checks import (
    bars_on_interval_grid,
    no_duplicate_bars,
    no_gaps,
    ohlc_consistent,
)
from trading_pipeline.defs.history.partitions import series_month, series_month_key
from trading_pipeline.history.checksum import sha256_file
from trading_pipeline.history.manifest import Manifest
from trading_pipeline.history.vision import monthly_key
from trading_pipeline_tests.defs.conftest import BTC, DAILY_ONLY, ETH, MONTHLY, HistoryKit
from trading_pipeline_tests.defs.readable import problems
from trading_pipeline_tests.fakes.vision import bar_open_times, next_month

pytestmark = pytest.mark.slow  # Dagster instance runs

ASSETS = [raw_zips, kline_csv, klines]
CHECKS = [no_duplicate_bars, ohlc_consistent, bars_on_interval_grid, no_gaps]
RANGE_START = dg.MultiPartitionKey({"series": ETH.key, "month": "2024-01-01"})


def _expected_rows(year: int, month: int) -> int:
    start = datetime(year, month, 1, tzinfo=UTC)
    return len(list(bar_open_times("1h", start, next_month(start))))


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _latest_per_month(
    instance: dg.DagsterInstance, key: dg.AssetKey
) -> dict[str, dict[str, dg.MetadataValue]]:
    """The metadata of each partition's latest materialization, from the event log."""
    out: dict[str, dict[str, dg.MetadataValue]] = {}
    for partition in instance.get_materialized_partitions(key):
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records[0]
        out[partition] = dict(record.asset_materialization.metadata)  # type: ignore[union-attr]
    return out


def _check_records(
    instance: dg.DagsterInstance, partitions: list[str]
) -> dict[tuple[str, str], Any]:
    """The latest execution record of each klines check for each partition."""
    from dagster._core.storage.event_log.base import PartitionKeyFilter

    out = {}
    for check in CHECKS:
        check_key = next(iter(check.check_keys))
        for partition in partitions:
            records = instance.event_log_storage.get_asset_check_execution_history(
                check_key, limit=1, partition_filter=PartitionKeyFilter(key=partition)
            )
            if records:
                out[(check_key.name, partition)] = records[0]
    return out


@dg.asset(
    partitions_def=series_month,
    deps=[klines],
    group_name="test",
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def downstream(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Stands for the features that will read klines."""
    return dg.MaterializeResult(metadata={"partitions": len(context.partition_keys)})


def test_one_partition_builds_parquet_and_passes_checks(
    instance: dg.DagsterInstance, make_store: Callable[..., HistoryKit]
) -> None:
    store = make_store()
    key = series_month_key(BTC.key, "2024-01-01")
    result = dg.materialize(
        [*ASSETS, *CHECKS], partition_key=str(key), instance=instance, resources=store.resources
    )
    assert result.success
    path = store.layout().parquet_path(BTC, 2024, 1)
    frame = pl.read_parquet(path)
    assert frame.height == _expected_rows(2024, 1)
    assert frame["open_time"].is_sorted() and frame["open_time"].n_unique() == frame.height
    # the metadata a person reads matches the file
    meta = result.asset_materializations_for_node("history__klines")[0].metadata
    assert meta["rows"].value == frame.height
    assert meta["parquet_path"].value == str(path)
    preview = meta["preview"]
    assert isinstance(preview, dg.TableMetadataValue)
    assert preview.schema.columns[0].name == "open_time"
    assert preview.records[0].data["open_time"] == "2024-01-01"
    assert problems(meta) == []
    raw_meta = result.asset_materializations_for_node("history__raw_zips")[0].metadata
    assert raw_meta["source"].value == "monthly" and raw_meta["files_new"].value == 1
    assert Manifest(store.layout().manifest_path).get(monthly_key(BTC, 2024, 1)) is not None
    assert _check_results(result) == dict.fromkeys(
        ["no_duplicate_bars", "ohlc_consistent", "bars_on_interval_grid", "no_gaps"], True
    )


def test_a_partition_range_runs_as_one_run_and_fills_from_dailies(
    instance: dg.DagsterInstance, make_store: Callable[..., HistoryKit]
) -> None:
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    store = make_store()
    runs_before = len(instance.get_run_records())
    end = series_month_key(ETH.key, f"{DAILY_ONLY[0]}-{DAILY_ONLY[1]:02d}-01")
    result = dg.materialize(
        [*ASSETS, *CHECKS],
        instance=instance,
        resources=store.resources,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: str(RANGE_START),
            ASSET_PARTITION_RANGE_END_TAG: str(end),
        },
    )
    assert result.success
    assert len(instance.get_run_records()) == runs_before + 1
    for year, month in [*MONTHLY, DAILY_ONLY]:
        frame = pl.read_parquet(store.layout().parquet_path(ETH, year, month))
        assert frame.height == _expected_rows(year, month)
    # every month carries its own metadata, read back from the instance's event log
    zips = _latest_per_month(instance, raw_zips.key)
    assert zips[str(end)]["source"].value == "daily" and zips[str(end)]["files"].value == 31
    assert zips[str(RANGE_START)]["source"].value == "monthly"
    months = _latest_per_month(instance, klines.key)
    for year, month in [*MONTHLY, DAILY_ONLY]:
        key = str(series_month_key(ETH.key, f"{year}-{month:02d}-01"))
        meta = months[key]
        path = store.layout().parquet_path(ETH, year, month)
        assert meta["rows"].value == _expected_rows(year, month)
        assert meta["parquet_path"].value == str(path)
        assert meta["sha256"].value == sha256_file(path)
        assert meta["first_bar"].value == datetime(year, month, 1, tzinfo=UTC).timestamp()
        assert meta["status"].value == "built"
    # … and each check is recorded per month: 4 checks × 3 months passed, none skipped
    per_month = _check_records(instance, [str(k) for k in months if ETH.key in k])
    assert len(per_month) == 4 * 3
    assert {r.status.value for r in per_month.values()} == {"SUCCEEDED"}
    # the same range again: the same files, so every month says it is unchanged
    again = dg.materialize(
        [*ASSETS, *CHECKS],
        instance=instance,
        resources=store.resources,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: str(RANGE_START),
            ASSET_PARTITION_RANGE_END_TAG: str(end),
        },
    )
    assert again.success
    statuses = {k: m["status"].value for k, m in _latest_per_month(instance, klines.key).items()}
    assert {statuses[k] for k in statuses if ETH.key in k} == {"unchanged"}
    materialized = instance.get_materialized_partitions(dg.AssetKey(["history", "klines"]))
    assert {k for k in materialized if ETH.key in k} == {
        str(series_month_key(ETH.key, f"{y}-{m:02d}-01")) for y, m in [*MONTHLY, DAILY_ONLY]
    }
    assert all(_check_results(result).values())


def test_failing_blocking_check_on_planted_duplicate_stops_downstream(
    instance: dg.DagsterInstance, make_store: Callable[..., HistoryKit]
) -> None:
    store = make_store()
    key = str(series_month_key(BTC.key, "2024-02-01"))
    everything = [*ASSETS, *CHECKS, downstream]
    first = dg.materialize(
        everything, partition_key=key, instance=instance, resources=store.resources
    )
    assert first.success and first.asset_materializations_for_node("downstream")

    path = store.layout().parquet_path(BTC, 2024, 2)
    frame = pl.read_parquet(path)
    pl.concat([frame, frame.slice(10, 1)]).write_parquet(path)  # plant one duplicate bar

    again = dg.materialize(
        everything,
        selection=dg.AssetSelection.checks_for_assets(klines)
        | dg.AssetSelection.assets(downstream),
        partition_key=key,
        instance=instance,
        resources=store.resources,
        raise_on_error=False,
    )
    assert not again.success
    checks = {e.check_name: e for e in again.get_asset_check_evaluations()}
    assert checks["no_duplicate_bars"].passed is False
    assert checks["no_duplicate_bars"].metadata["duplicate_rows"].value == 2
    assert checks["ohlc_consistent"].passed and checks["bars_on_interval_grid"].passed
    assert not again.asset_materializations_for_node("downstream")
    skipped = [e for e in again.all_events if e.step_key == "downstream"]
    assert not any(e.is_successful_output for e in skipped)


def test_gaps_warn_without_stopping(
    instance: dg.DagsterInstance, make_store: Callable[..., HistoryKit], tmp_path: Path
) -> None:
    store = make_store()
    key = str(series_month_key(BTC.key, "2024-01-01"))
    dg.materialize([*ASSETS], partition_key=key, instance=instance, resources=store.resources)
    path = store.layout().parquet_path(BTC, 2024, 1)
    frame = pl.read_parquet(path)
    frame.filter(pl.arange(0, frame.height) != 100).write_parquet(path)  # one missing bar

    result = dg.materialize(
        [*ASSETS, *CHECKS, downstream],
        selection=dg.AssetSelection.checks_for_assets(klines)
        | dg.AssetSelection.assets(downstream),
        partition_key=key,
        instance=instance,
        resources=store.resources,
    )
    assert result.success
    gaps = next(e for e in result.get_asset_check_evaluations() if e.check_name == "no_gaps")
    assert gaps.passed is False and gaps.severity == dg.AssetCheckSeverity.WARN
    assert gaps.metadata["gaps"].value == 1
    assert result.asset_materializations_for_node("downstream")


def test_wrong_checksum_fails_the_zip_and_builds_nothing(
    vision_tree: Path,
    instance: dg.DagsterInstance,
    make_store: Callable[..., HistoryKit],
) -> None:
    store = make_store()
    zip_path = vision_tree / monthly_key(ETH, 2024, 2)
    checksum = zip_path.with_name(zip_path.name + ".CHECKSUM")
    good = checksum.read_bytes()
    checksum.write_bytes(b"0" * 64 + b"  " + zip_path.name.encode())
    try:
        result = dg.materialize(
            [*ASSETS, *CHECKS],
            partition_key=str(series_month_key(ETH.key, "2024-02-01")),
            instance=instance,
            resources=store.resources,
            raise_on_error=False,
        )
    finally:
        checksum.write_bytes(good)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "history__raw_zips"
    assert zip_path.name in str(failure.event_specific_data)
    assert not store.layout().raw_path(monthly_key(ETH, 2024, 2)).exists()
    assert not store.layout().parquet_path(ETH, 2024, 2).exists()


@pytest.mark.parametrize("bad", ["2024-01-01|nonsense", "2024-01-01|spot-BTCUSDT"])
def test_malformed_series_keys_are_rejected(bad: str) -> None:
    from trading_pipeline.defs.history.partitions import split_key

    with pytest.raises(ValueError):
        split_key(bad)
