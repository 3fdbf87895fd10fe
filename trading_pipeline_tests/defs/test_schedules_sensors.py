"""Schedules and sensors evaluated for given dates: the partitions they ask for."""

from collections.abc import Callable
from datetime import UTC, date, datetime

import dagster as dg
import pytest

from trading_pipeline.defs.history import sensors
from trading_pipeline.defs.history.partitions import series_partitions
from trading_pipeline.defs.history.schedules import (
    history_daily_schedule,
    history_monthly_schedule,
)
from trading_pipeline.defs.history.sensors import history_series, late_monthly_files
from trading_pipeline.history.layout import Series
from trading_pipeline.history.manifest import Manifest, ManifestEntry
from trading_pipeline.history.vision import daily_key, monthly_key
from trading_pipeline_tests.defs.conftest import BTC, ETH, HistoryKit
from trading_pipeline_tests.fakes.vision import month_days

pytestmark = pytest.mark.slow  # Dagster instance runs


def _partitions(requests: object) -> list[tuple[str, str]]:
    assert isinstance(requests, list | tuple), requests
    out = []
    for request in requests:
        assert isinstance(request, dg.RunRequest)
        key = request.partition_key
        assert isinstance(key, dg.MultiPartitionKey)
        out.append((key.keys_by_dimension["series"], key.keys_by_dimension["month"]))
    return sorted(out)


def _tick(instance: dg.DagsterInstance, when: datetime) -> dg.ScheduleEvaluationContext:
    return dg.build_schedule_context(instance=instance, scheduled_execution_time=when)


@pytest.mark.parametrize(
    ("when", "month"),
    [
        (datetime(2026, 11, 8, 3, tzinfo=UTC), "2026-10-01"),
        (datetime(2027, 1, 8, 3, tzinfo=UTC), "2026-12-01"),  # across the year
    ],
)
def test_monthly_schedule_asks_for_last_month_of_every_series(
    instance: dg.DagsterInstance, when: datetime, month: str
) -> None:
    assert history_monthly_schedule.cron_schedule == "0 3 8 * *"
    requested = _partitions(history_monthly_schedule(_tick(instance, when)))
    assert requested == [(BTC.key, month), (ETH.key, month)]


@pytest.mark.parametrize(
    ("when", "month"),
    [
        (datetime(2026, 11, 15, 3, tzinfo=UTC), "2026-11-01"),
        (datetime(2026, 12, 1, 3, tzinfo=UTC), "2026-11-01"),  # yesterday closes November
        (datetime(2026, 12, 2, 3, tzinfo=UTC), "2026-12-01"),
    ],
)
def test_daily_schedule_fills_the_month_of_yesterday(
    instance: dg.DagsterInstance, when: datetime, month: str
) -> None:
    requests = history_daily_schedule(_tick(instance, when))
    assert _partitions(requests) == [(BTC.key, month), (ETH.key, month)]
    assert isinstance(requests, list)
    assert len({r.run_key for r in requests}) == 2  # distinct per series and day


def test_schedules_skip_when_no_series_is_registered() -> None:
    with dg.instance_for_test() as empty:
        result = history_daily_schedule(_tick(empty, datetime(2026, 11, 15, 3, tzinfo=UTC)))
    assert isinstance(result, dg.SkipReason)


def test_series_sensor_registers_the_configured_universe(
    make_store: Callable[..., HistoryKit],
) -> None:
    store = make_store(universe=["BTCUSDT", "ethusdt", "BNBUSDT"])
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions(series_partitions.name or "series", [BTC.key])
        context = dg.build_sensor_context(instance=inst, resources=store.resources)
        result = history_series(context)
        assert isinstance(result, dg.SensorResult)
        (request,) = result.dynamic_partitions_requests or []
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        assert sorted(request.partition_keys) == ["spot-BNBUSDT-1h", ETH.key]
        inst.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        again = dg.build_sensor_context(instance=inst, resources=store.resources)
        assert isinstance(history_series(again), dg.SkipReason)


def _write_manifest(store: HistoryKit, keys: list[str]) -> None:
    Manifest(store.layout().manifest_path).update([ManifestEntry(key=k) for k in keys])


@pytest.fixture
def october_state(make_store: Callable[..., HistoryKit]) -> HistoryKit:
    """BTC's October still from daily files (monthly zip late), ETH's monthly zip in."""
    store = make_store()
    dailies = [daily_key(BTC, d) for d in month_days(2026, 10)]
    _write_manifest(store, [*dailies, monthly_key(ETH, 2026, 10)])
    return store


def _late(
    monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance, store: HistoryKit, day: date
) -> object:
    monkeypatch.setattr(sensors, "utc_today", lambda: day)
    return late_monthly_files(dg.build_sensor_context(instance=instance, resources=store.resources))


def test_late_monthly_file_is_asked_again_until_it_arrives(
    monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance, october_state: HistoryKit
) -> None:
    # Before the 9th the monthly schedule (8th) has not had its chance yet.
    assert isinstance(_late(monkeypatch, instance, october_state, date(2026, 11, 7)), dg.SkipReason)
    # From the 9th: only BTC, whose October is still made of daily files.
    result = _late(monkeypatch, instance, october_state, date(2026, 11, 9))
    assert isinstance(result, dg.SensorResult)
    assert _partitions(result.run_requests) == [(BTC.key, "2026-10-01")]
    (request,) = result.run_requests or []
    assert request.tags["history/source"] == "daily"
    # The next day asks again (a new run key), until the monthly zip is in the manifest.
    later = _late(monkeypatch, instance, october_state, date(2026, 11, 20))
    assert isinstance(later, dg.SensorResult)
    (again,) = later.run_requests or []
    assert again.run_key != request.run_key
    _write_manifest(october_state, [monthly_key(BTC, 2026, 10)])
    assert isinstance(
        _late(monkeypatch, instance, october_state, date(2026, 11, 21)), dg.SkipReason
    )


def test_month_with_nothing_fetched_counts_as_late(
    monkeypatch: pytest.MonkeyPatch,
    instance: dg.DagsterInstance,
    make_store: Callable[..., HistoryKit],
) -> None:
    store = make_store()
    _write_manifest(store, [monthly_key(BTC, 2026, 10)])
    result = _late(monkeypatch, instance, store, date(2026, 11, 12))
    assert isinstance(result, dg.SensorResult)
    assert _partitions(result.run_requests) == [(ETH.key, "2026-10-01")]
    assert (result.run_requests or [])[0].tags["history/source"] == "none"


def test_month_source_reads_the_manifest() -> None:
    other = Series("um", "BTCUSDT", "1h")
    entries = {k: ManifestEntry(key=k) for k in [daily_key(other, date(2026, 10, 3))]}
    assert sensors.month_source(entries, other, date(2026, 10, 1)) == "daily"
    assert sensors.month_source(entries, BTC, date(2026, 10, 1)) == "none"
    assert sensors.month_source(entries, other, date(2026, 9, 1)) == "none"
