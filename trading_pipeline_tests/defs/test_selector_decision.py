"""The decision sensor: one tick per evaluation, a deployment run only when a bot changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from trading_pipeline.defs.resources import DataLake
from trading_pipeline.defs.selector import sensors as decision
from trading_pipeline.defs.selector.resources import SelectorRuntime
from trading_pipeline.defs.selector.sensors import DEPLOY_JOB, selector_decision_sensor
from trading_pipeline.selector.decisions import DecisionStore, decisions_path
from trading_pipeline.selector.registry import MlflowRegistry
from trading_pipeline.tracking import default_tracking_uri
from trading_pipeline_tests.fakes.binance import FakeBinance, running_fake_binance
from trading_pipeline_tests.fakes.store import write_store
from trading_pipeline_tests.selector.decision_support import (
    BTC,
    ETH,
    START,
    fitted_selector,
    fleet_bars,
    hours,
)

pytestmark = pytest.mark.slow  # Dagster instance runs

STORED = 1000
SERVED = 1010
NOW = START + hours(SERVED - 1) + hours(1) / 3  # the last served bar is still open


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decision, "utc_now", lambda: NOW)
    from trading_pipeline.defs.bots import assets as deploy_module

    monkeypatch.setattr(deploy_module, "utc_now", lambda: NOW)  # decisions are judged by it


@dg.op
def _noop() -> None:
    """Stands in for the deployment job's work."""


@dg.job(name=DEPLOY_JOB)
def stub_deploy_assignments() -> None:
    _noop()


DEFS = dg.Definitions(jobs=[stub_deploy_assignments], sensors=[selector_decision_sensor])


@pytest.fixture(scope="module")
def bars() -> dict[str, pl.DataFrame]:
    return fleet_bars(SERVED)


@pytest.fixture
def fake(bars: dict[str, pl.DataFrame]) -> Iterator[FakeBinance]:
    served = {("BTCUSDT", "1h"): bars[BTC], ("ETHUSDT", "1h"): bars[ETH]}
    with running_fake_binance(served) as srv:
        srv.set_now(NOW)
        yield srv


def _runtime(
    data: Path, fake: FakeBinance, bars: dict[str, pl.DataFrame]
) -> dict[str, dg.ConfigurableResource]:
    """The sensor's resources: the lake over ``data`` and a runtime reading the fake venue."""
    for key, df in bars.items():
        write_store(data / "history", key, df.head(STORED))
    return {
        "lake": DataLake(data_dir=str(data)),
        "selector_runtime": SelectorRuntime(venue_url=fake.url, live=True),
    }


def _evaluate(
    instance: dg.DagsterInstance, runtime: dict[str, dg.ConfigurableResource]
) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(instance=instance, resources=runtime, definitions=DEFS)
    result = selector_decision_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def test_sensor_targets_the_deployment_job_every_five_minutes() -> None:
    sensor = DEFS.resolve_sensor_def("selector_decision_sensor")
    assert sensor.minimum_interval_seconds == 300
    assert sensor.job_name == DEPLOY_JOB
    assert DEFS.resolve_job_def(DEPLOY_JOB).name == DEPLOY_JOB
    # the code location loads the sensor and registers its resources
    from trading_pipeline.definitions import defs

    listed = defs()
    assert listed.resolve_sensor_def("selector_decision_sensor").job_name == DEPLOY_JOB
    resources = listed.resources or {}
    assert isinstance(resources["selector_runtime"], SelectorRuntime)
    assert isinstance(resources["lake"], DataLake)


def test_no_champion_records_cash_and_requests_nothing(
    instance: dg.DagsterInstance, tmp_path: Path, fake: FakeBinance, bars: dict[str, pl.DataFrame]
) -> None:
    runtime = _runtime(tmp_path / "data", fake, bars)
    result = _evaluate(instance, runtime)
    assert isinstance(result, dg.SkipReason)
    assert "no bot changed" in (result.skip_message or "")
    history = DecisionStore(decisions_path(tmp_path / "data")).history()
    assert history.height == 5 and set(history["choice"]) == {"cash"}
    assert not fake.requests_to("/api/v3/klines")  # no model: no candles needed


@pytest.mark.slow
def test_a_changed_choice_requests_one_deployment(
    instance: dg.DagsterInstance, tmp_path: Path, fake: FakeBinance, bars: dict[str, pl.DataFrame]
) -> None:
    data = tmp_path / "data"
    runtime = _runtime(data, fake, bars)
    assert isinstance(_evaluate(instance, runtime), dg.SkipReason)  # before any model
    registry = MlflowRegistry(default_tracking_uri(data), "strategy-selector")
    model = fitted_selector({k: df.head(900) for k, df in bars.items()})
    registry.promote(
        "strategy-selector",
        registry.register(model, name="strategy-selector", metrics={"heldout_net_return": 1}),
    )

    result = _evaluate(instance, runtime)
    assert isinstance(result, dg.SensorResult)
    assert result.run_requests is not None and len(result.run_requests) == 1
    request = result.run_requests[0]
    store = DecisionStore(decisions_path(data))
    latest = store.current()
    changed = sorted(d.id for d in latest.values() if d.changed and d.id is not None)
    assert changed  # the first model decision changes every bot's record
    assert request.run_key == "decisions-" + "-".join(map(str, changed))
    assert request.tags["selector/decision_ids"] == ",".join(map(str, changed))
    assert request.tags["selector/model_version"] == "1"
    assert result.cursor == str(max(d.id for d in latest.values() if d.id is not None))
    assert fake.requests_to("/api/v3/klines")  # candles came from the exchange too

    # the next tick on the same closed candles changes nothing: no second request
    again = _evaluate(instance, runtime)
    assert isinstance(again, dg.SkipReason)
    assert store.history().height == 15
    assert {d.model_version for d in store.current().values()} == {1}

    # the requested run, executed with the deployment job's own code, deploys the choices
    from trading_pipeline.defs.bots.assets import bot_assignments
    from trading_pipeline.defs.bots.jobs import deploy_assignments
    from trading_pipeline.defs.bots.resources import BotsRuntime

    lake = DataLake(data_dir=str(data))
    full = dg.Definitions(
        assets=[bot_assignments],
        jobs=[deploy_assignments],
        sensors=[selector_decision_sensor],
        resources={"lake": lake, "bots_runtime": BotsRuntime()},
    )
    run = full.resolve_job_def(DEPLOY_JOB).execute_in_process(instance=instance, tags=request.tags)
    assert run.success
    deployed = BotsRuntime.store(lake.layout).all_current()
    for bot, d in latest.items():
        assert deployed[bot].family == d.family, (bot, deployed[bot], d.reason)
