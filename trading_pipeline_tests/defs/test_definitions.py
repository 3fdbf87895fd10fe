"""The code location loads, and every job, schedule and sensor in it resolves."""

import dagster as dg
import pytest

from trading_pipeline.definitions import defs

pytestmark = pytest.mark.slow  # loads the whole Dagster code location (imports dagster, mlflow, ccxt, …)


@pytest.fixture(scope="module")
def location() -> dg.Definitions:
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    return loaded


def test_every_job_schedule_and_sensor_resolves(location: dg.Definitions) -> None:
    jobs = [j.name for j in location.jobs or []]
    assert "history_job" in jobs
    for name in jobs:
        assert location.resolve_job_def(name).name == name
    assert location.resolve_implicit_global_asset_job_def() is not None
    for schedule in location.schedules or []:
        assert location.resolve_schedule_def(schedule.name).job_name == "history_job"
    sensor_names = {s.name for s in location.sensors or []}
    assert {"history_series", "late_monthly_files"} <= sensor_names
    for name in sensor_names:
        location.resolve_sensor_def(name)


def test_history_assets_are_grouped_checked_and_backfill_in_one_run(
    location: dg.Definitions,
) -> None:
    graph = location.resolve_asset_graph()
    keys = [dg.AssetKey(["history", n]) for n in ("raw_zips", "kline_csv", "klines")]
    for key in keys:
        node = graph.get(key)
        assert node.group_name == "market_data"
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert isinstance(node.partitions_def, dg.MultiPartitionsDefinition)
    checks = {k.name: k for k in graph.asset_check_keys if k.asset_key == keys[-1]}
    assert set(checks) == {
        "no_duplicate_bars",
        "ohlc_consistent",
        "bars_on_interval_grid",
        "no_gaps",
    }
    blocking = {n for n, k in checks.items() if graph.get_check_spec(k).blocking}
    assert blocking == {"no_duplicate_bars", "ohlc_consistent", "bars_on_interval_grid"}


def test_resources_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TP_VISION_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("TP_UNIVERSE", "SOLUSDT")
    monkeypatch.setenv("TP_HISTORY_DIR", "/srv/trading-bots/history")
    store = defs().resources["history"]
    assert store.vision_url == "http://127.0.0.1:9"
    assert store.series_keys() == ["spot-SOLUSDT-1h"]
    assert str(store.root) == "/srv/trading-bots/history"
