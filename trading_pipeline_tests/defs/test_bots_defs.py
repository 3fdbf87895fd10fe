"""The bots' Dagster definitions: the deploy job (seeded defaults, decisions, a refusal), the
champion-change sensor over a real MLflow registry, and the paper replay report asset."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from trading_pipeline.bots.deploy_store import DeploymentStore
from trading_pipeline.definitions import defs
from trading_pipeline.defs.bots.assets import DEPLOY_JOB, bot_assignments
from trading_pipeline.defs.bots.jobs import deploy_assignments
from trading_pipeline.defs.bots.replay import paper_replay_report
from trading_pipeline.defs.bots.resources import BotsRuntime
from trading_pipeline.defs.bots.sensors import champion_change_sensor
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.history.layout import Series
from trading_pipeline.selector.decisions import Decision, DecisionStore, decisions_path
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.store import write_store

pytestmark = pytest.mark.slow  # Dagster instance runs


def resources(lake: DataLake) -> dict[str, object]:
    return {"lake": lake, "bots_runtime": BotsRuntime()}


def bots_defs(rt: DataLake) -> dg.Definitions:
    return dg.Definitions(
        assets=[bot_assignments],
        jobs=[deploy_assignments],
        sensors=[champion_change_sensor],
        resources=resources(rt),
    )


def runtime(tmp_path: Path) -> DataLake:
    return DataLake(data_dir=str(tmp_path / "data"))


def decision(bot: str, family: str, params: dict[str, object], **kw: object) -> Decision:
    fields: dict[str, object] = {
        "decided_at": datetime.now(UTC) - timedelta(minutes=5),  # fresh: older is never live
        "bot": bot,
        "choice": f"{family}@spot-BTCUSDT-1h",
        "family": family,
        "version": 1,
        "params": params,
        "series": "spot-BTCUSDT-1h",
        "symbols": ("BTCUSDT",),
        "regime": "bull",
        "probabilities": {f"{family}@spot-BTCUSDT-1h": 0.7, "cash": 0.3},
        "inputs_hash": "abc",
        "model_name": "strategy-selector",
        "model_version": 3,
        "model_run_id": "run-3",
        "changed": True,
        "reason": "test",
    }
    fields.update(kw)
    return Decision(**fields)  # type: ignore[arg-type]


def deploy(rt: DataLake, instance: dg.DagsterInstance, **tags: str) -> dg.AssetMaterialization:
    result = (
        bots_defs(rt).resolve_job_def(DEPLOY_JOB).execute_in_process(instance=instance, tags=tags)
    )
    assert result.success
    mats = result.asset_materializations_for_node("bot_assignments")
    assert len(mats) == 1
    return mats[0]


def test_location_has_the_job_sensor_and_assets() -> None:
    loc = defs()
    assert loc.resolve_job_def(DEPLOY_JOB).name == DEPLOY_JOB
    sensor = loc.resolve_sensor_def("champion_change_sensor")
    assert sensor.job_name == DEPLOY_JOB
    graph = loc.resolve_asset_graph()
    for name in ("bot_assignments", "paper_replay_report"):
        assert graph.get(dg.AssetKey(name)).group_name == "bots"


def test_deploy_seeds_spec_defaults_before_any_decision(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    rt = runtime(tmp_path)
    mat = deploy(rt, instance)
    assert mat.metadata["deployed"].value == 5
    assert mat.metadata["decisions_used"].value == 0
    fleet = DeploymentStore(rt.layout.bots_dir).all_current()
    assert {b: a.family for b, a in fleet.items()} == {
        "bot1": "sma_cross",
        "bot2": "cash",
        "bot3": "cash",
        "bot4": "cash",
        "bot5": "hedging",
    }
    again = deploy(rt, instance)  # no decisions, all assigned: every bot keeps what it has
    assert again.metadata["deployed"].value == 0 and again.metadata["refused"].value == 0
    assert {a.version for a in DeploymentStore(rt.layout.bots_dir).all_current().values()} == {1}


def test_decisions_become_assignments_and_an_invalid_one_is_refused(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    rt = runtime(tmp_path)
    deploy(rt, instance)
    rt.layout.selector_dir.mkdir(parents=True, exist_ok=True)  # the training set's provenance
    (rt.layout.selector_dir / "training_set.json").write_text(
        json.dumps(
            {"provenance": {"discovery_mlflow_runs": {"sma_cross|spot-BTCUSDT-1h": "disc-run-1"}}}
        )
    )
    decisions = DecisionStore(decisions_path(rt.data_dir))
    decisions.record(decision("bot1", "sma_cross", {"fast": 20, "slow": 80}))
    decisions.record(decision("bot2", "rsi_reversion", {"window": 9999}, series="spot-BTCUSDT-5m"))
    mat = deploy(rt, instance, **{"selector/model_version": "3", "trigger": "test"})
    assert mat.metadata["deployed"].value == 1 and mat.metadata["refused"].value == 1
    refusals: Any = mat.metadata["refusals"].value
    assert refusals[0]["bot"] == "bot2" and "rsi_reversion" in refusals[0]["reason"]
    assignments: Any = mat.metadata["assignments"]
    assert isinstance(assignments, dg.TableMetadataValue)
    assert {r.data["bot"]: r.data["status"] for r in assignments.records}["bot2"] == "refused"
    store = DeploymentStore(rt.layout.bots_dir)
    bot1 = store.current("bot1")
    assert bot1 is not None and bot1.version == 2 and bot1.params["fast"] == 20
    assert bot1.symbols == ("BTCUSDT",) and bot1.interval == "1h"
    assert bot1.capital_fraction == pytest.approx(0.30)  # the fraction is kept
    assert bot1.lineage["model_version"] == 3 and bot1.lineage["selector/model_version"] == "3"
    assert bot1.lineage["source"] == "selector" and bot1.lineage["decision_id"] is not None
    bot2 = store.current("bot2")
    assert bot2 is not None and bot2.version == 1 and bot2.family == "cash"  # kept the old one
    assert store.history("bot2")[-1]["event"] == "refused"
    # each bot's lineage, as links: model version, training run, discovery run, study partition
    lineage: Any = mat.metadata["lineage_json"].value
    one = lineage["bot1"]
    assert one["family"] == "sma_cross" and one["params"]["fast"] == 20
    assert one["model_url"] == "http://127.0.0.1:5000/#/models/strategy-selector/versions/3"
    assert one["training_run_url"] == "http://127.0.0.1:5000/#/runs/run-3"
    assert one["discovery_run_url"] == "http://127.0.0.1:5000/#/runs/disc-run-1"
    assert one["study_partition_url"] == (
        "http://127.0.0.1:3000/assets/strategy_results"
        "?view=partitions&partition=sma_cross%7Cspot-BTCUSDT-1h"
    )
    assert one["decision"].startswith(f"#{bot1.lineage['decision_id']} sma_cross@")
    table = str(mat.metadata["lineage"].value)
    assert (
        "[strategy-selector v3](http://127.0.0.1:5000/#/models/strategy-selector/versions/3)"
        in table
    )


def _register_champion(data_dir: Path, versions: int) -> None:
    from trading_pipeline.tracking import MlflowTracker, default_tracking_uri

    tracker = MlflowTracker(default_tracking_uri(data_dir), "strategy-selector")
    client = tracker.client
    if versions == 1:
        client.create_registered_model("strategy-selector")
    mv = client.create_model_version("strategy-selector", source=str(data_dir / f"m{versions}"))
    client.set_registered_model_alias("strategy-selector", "champion", mv.version)


def test_champion_sensor_requests_a_deploy_when_the_alias_moves(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    rt = runtime(tmp_path)
    data = Path(rt.data_dir)

    def evaluate(cursor: str | None) -> dg.SensorResult | dg.SkipReason:
        ctx = dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources=resources(rt),
            definitions=bots_defs(rt),
        )
        result = champion_change_sensor(ctx)
        assert isinstance(result, dg.SensorResult | dg.SkipReason)
        return result

    none = evaluate(None)
    assert isinstance(none, dg.SkipReason) and "no strategy-selector champion" in str(
        none.skip_message
    )
    assert not (data / "mlflow").exists()  # reading never creates the store
    _register_champion(data, 1)
    first = evaluate(None)
    assert isinstance(first, dg.SensorResult) and first.cursor == "1"
    assert [r.tags["selector/model_version"] for r in first.run_requests or []] == ["1"]
    same = evaluate("1")
    assert isinstance(same, dg.SkipReason) and "still v1" in str(same.skip_message)
    _register_champion(data, 2)
    moved = evaluate("1")
    assert isinstance(moved, dg.SensorResult) and moved.cursor == "2"
    assert (moved.run_requests or [])[0].run_key == "champion-v2-after-1"


def _write_history(history_dir: Path, symbols: tuple[str, ...], bars: int) -> None:
    for i, symbol in enumerate(symbols):
        df = make_bars(
            bars, seed=i, vol=0.01, start=datetime(2022, 4, 1, tzinfo=UTC), price=100.0 * (i + 1)
        )
        write_store(history_dir, Series("spot", symbol, "1h"), df)


def test_paper_replay_report_asset_logs_metadata_and_an_mlflow_run(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    rt = runtime(tmp_path)
    _write_history(rt.layout.history_dir, ("BTCUSDT", "ETHUSDT", "BNBUSDT"), 24 * 50)
    result = dg.materialize(
        [paper_replay_report],
        resources=resources(rt),
        instance=instance,
        run_config={
            "ops": {
                "paper_replay_report": {
                    "config": {
                        "from_date": "2022-05-01",
                        "to_date": "2022-05-11",
                        "capital": 1000.0,
                    }
                }
            }
        },
    )
    assert result.success
    md = result.asset_materializations_for_node("paper_replay_report")[0].metadata
    assert md["capital"].value == 1000.0
    table: Any = md["pnl_per_bot"]
    assert isinstance(table, dg.TableMetadataValue)
    rows = {r.data["bot"]: r.data for r in table.records}
    assert rows["bot1"]["strategy"] == "sma_cross" and "buy_and_hold" in rows["bot1"]
    assert str(md["equity"].value).startswith("![equity](data:image/png;base64,")
    report = json.loads(Path(str(md["report"].value)).read_text())
    assert report["capital"] == 1000.0 and set(report["bots"]) >= {"bot1", "bot5"}
    assert md["final"].value == pytest.approx(report["final"], abs=0.005)  # to the cent
    # the MLflow run holds the same numbers and the two files
    from mlflow.tracking import MlflowClient

    from trading_pipeline.tracking import default_tracking_uri

    client = MlflowClient(default_tracking_uri(rt.data_dir))
    run = client.get_run(str(md["mlflow_run_id"].value))
    assert run.info.status == "FINISHED"
    assert run.data.metrics["final"] == pytest.approx(report["final"])
    assert run.data.params["bot1.family"] == "sma_cross"
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"report.json", "equity.png"}
    # linked both ways: the metadata opens the MLflow run, the run opens the Dagster run
    assert md["mlflow_run"].value == (
        f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        "?workflowType=machine_learning"
    )
    assert run.data.tags["dagster.run_url"] == f"http://127.0.0.1:3000/runs/{result.run_id}"
    # its source is the Dagster asset, its description says what it is
    assert run.data.tags["mlflow.source.type"] == "JOB"
    assert run.data.tags["mlflow.source.name"] == "dagster paper_replay_report"
    assert "Paper replay" in run.data.tags["mlflow.note.content"]


def test_replay_bad_window_fails_the_run(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    result = dg.materialize(
        [paper_replay_report],
        resources=resources(runtime(tmp_path)),
        instance=instance,
        run_config={
            "ops": {
                "paper_replay_report": {
                    "config": {"from_date": "2022-05-11", "to_date": "2022-05-01"}
                }
            }
        },
        raise_on_error=False,
    )
    assert not result.success


def test_fleet_risk_sensor_halts_on_a_crash_day(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    import time

    from trading_pipeline.defs.bots.sensors import fleet_risk_sensor
    from trading_pipeline_tests.bots.test_fleet import make_ledger

    rt = runtime(tmp_path)
    defs_ = dg.Definitions(sensors=[fleet_risk_sensor], resources=resources(rt))

    def evaluate() -> str:
        ctx = dg.build_sensor_context(instance=instance, resources=resources(rt), definitions=defs_)
        result = fleet_risk_sensor(ctx)
        assert isinstance(result, dg.SkipReason)
        return str(result.skip_message)

    assert evaluate() == "no paper ledgers yet"
    now = int(time.time() * 1000)
    midnight = now - now % 86_400_000
    for bot, start, end in (("bot1", 300.0, 240.0), ("bot2", 250.0, 230.0)):
        make_ledger(
            rt.layout.bots_dir / bot / "paper" / "ledger.sqlite",
            bot,
            start,
            [(midnight, start), (max(midnight + 1, now - 1000), end)],
        ).close()
    assert evaluate().endswith("fleet halted")  # (550 - 470) / 550 = 14.5% ≥ 10%
    halt = DeploymentStore(rt.layout.bots_dir).halted()
    assert (
        halt is not None
        and halt["by"] == "fleet-risk"
        and halt["loss"] == pytest.approx(80.0 / 550.0)
    )
