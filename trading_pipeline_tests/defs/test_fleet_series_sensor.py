"""The history sensor registers every bot's series from the fleet file (one in-process tick),
and the main job tunes each fleet series on the families of the bots trading it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from trading_pipeline.bots.fleet_file import load_fleet
from trading_pipeline.bots.spec import DEFAULT_FLEET, SCALPING_UNIVERSE, use_fleet
from trading_pipeline.defs.history.partitions import series_partitions
from trading_pipeline.defs.history.sensors import history_series
from trading_pipeline_tests.defs.conftest import HistoryKit

pytestmark = pytest.mark.slow  # Dagster instance


def _tick(inst: dg.DagsterInstance, store: HistoryKit) -> list[str]:
    result = history_series(dg.build_sensor_context(instance=inst, resources=store.resources))
    assert isinstance(result, dg.SensorResult)
    (request,) = result.dynamic_partitions_requests or []
    assert isinstance(request, dg.AddDynamicPartitionsRequest)
    inst.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return list(request.partition_keys)


def test_the_sensor_registers_the_universe_and_every_bots_series(
    make_store: Callable[..., HistoryKit],
) -> None:
    store = make_store(universe=["BTCUSDT", "ETHUSDT", "BNBUSDT"], fleet_series=True)
    with dg.instance_for_test() as inst:
        added = _tick(inst, store)
        registered = set(inst.get_dynamic_partitions(series_partitions.name or "series"))
        assert registered == set(added)
        assert {f"spot-{s}-5m" for s in SCALPING_UNIVERSE} <= registered  # bot2: ten 5m coins
        assert {f"spot-{s}-1h" for s in SCALPING_UNIVERSE} <= registered  # bot3's universe
        assert {"spot-BTCUSDT-1h", "spot-ETHUSDT-1h", "spot-BNBUSDT-1h"} <= registered
        assert not any(":" in k or "BTCUSD-" in k for k in registered)  # bot4: venue candles
        expected = {
            f"spot-{s}-{b.interval}" for b in DEFAULT_FLEET.bots for s in b.symbols if ":" not in s
        }
        assert registered == expected | {"spot-BTCUSDT-1h", "spot-ETHUSDT-1h", "spot-BNBUSDT-1h"}
        print(f"series registered: {len(registered)}")
        again = history_series(dg.build_sensor_context(instance=inst, resources=store.resources))
        assert isinstance(again, dg.SkipReason)
        assert f"all {len(registered)} series in force" in str(again.skip_message)


def test_off_registers_the_configured_universe_only(
    make_store: Callable[..., HistoryKit],
) -> None:
    store = make_store(universe=["BTCUSDT", "ETHUSDT"], fleet_series=False)
    with dg.instance_for_test() as inst:
        assert sorted(_tick(inst, store)) == ["spot-BTCUSDT-1h", "spot-ETHUSDT-1h"]


def test_a_fleet_file_in_force_changes_what_is_registered(
    make_store: Callable[..., HistoryKit], tmp_path: Path
) -> None:
    from trading_pipeline.bots.fleet_file import default_fleet_text

    text = default_fleet_text().replace('interval = "5m"', 'interval = "15m"')
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    use_fleet(load_fleet(path))
    try:
        store = make_store(universe=["BTCUSDT"], fleet_series=True)
        with dg.instance_for_test() as inst:
            added = set(_tick(inst, store))
        assert "spot-SOLUSDT-15m" in added and "spot-SOLUSDT-5m" not in added
    finally:
        use_fleet(None)


def test_the_main_job_tunes_fleet_series_on_their_bots_families(
    make_store: Callable[..., HistoryKit], tmp_path: Path
) -> None:
    from trading_pipeline.defs.chain import Budget, Chain

    store = make_store(universe=["BTCUSDT", "ETHUSDT", "BNBUSDT"])
    resources = store.resources
    with dg.instance_for_test() as inst:
        small = Chain(inst, budget=Budget(families=("sma_cross",)), resources=resources)
        assert small.report.series == ["spot-BTCUSDT-1h", "spot-ETHUSDT-1h", "spot-BNBUSDT-1h"]
        wide = Chain(
            inst,
            budget=Budget(families=("sma_cross",)),
            resources=resources,
            series_from_fleet=True,
        )
    assert "spot-SOLUSDT-5m" in wide.report.series and "spot-SOLUSDT-1h" in wide.report.series
    assert small.families_for("spot-BTCUSDT-1h") == ("sma_cross",)  # the budget only
    # the universe: the budget first, then what the bots trading it may run (bot3's families)
    btc = wide.families_for("spot-BTCUSDT-1h")
    assert btc[0] == "sma_cross" and set(DEFAULT_FLEET.bot("bot3").families) <= set(btc)
    assert len(btc) == len(set(btc))
    assert wide.families_for("spot-SOLUSDT-5m") == DEFAULT_FLEET.bot("bot2").families
    assert wide.families_for("spot-SOLUSDT-1h") == DEFAULT_FLEET.bot("bot3").families
