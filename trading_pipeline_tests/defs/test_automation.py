"""Continuous re-tuning: with ``TP_AUTOMATION=on`` a new month of history requests exactly the
partitions that depend on it; off (the default), no asset carries an automation condition.

The chain is materialized for real (a Binance Vision mirror on 127.0.0.1, a SQLite Dagster
instance, a journal Optuna storage and a SQLite MLflow store in tmp) for January and February
2024; the selector and bots assets, which need far more than two months of bars to train and
replay, are recorded as runless materializations. Then March lands (its daily zips) and the
conditions are evaluated by Dagster's own evaluator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from trading_pipeline.definitions import defs
from trading_pipeline.defs.discovery.assets import (
    performance_matrix,
    strategy_results,
    top_strategies,
)
from trading_pipeline.defs.discovery.partitions import family_series_key
from trading_pipeline.defs.features.assets import features, market_correlation, regime_periods
from trading_pipeline.defs.history.assets import kline_csv, klines, raw_zips
from trading_pipeline.defs.history.partitions import series_month_key, series_partitions
from trading_pipeline.settings import Settings, SettingsError
from trading_pipeline_tests.defs.conftest import BTC, HistoryKit, ops_config

pytestmark = pytest.mark.slow  # Dagster instance runs, a mirror server, Optuna and MLflow

FAMILY = "sma_cross"
TINY = {"trials": 4, "folds": 2, "seed": 1}
JAN, FEB, MAR = "2024-01-01", "2024-02-01", "2024-03-01"
T0 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)  # two ticks five minutes apart (no cron passes)
T1 = datetime(2025, 6, 10, 12, 5, tzinfo=UTC)
RECORDED = ("selector_training_set", "selector_model", "bot_assignments", "paper_replay_report")


def _history(kit: HistoryKit, instance: dg.DagsterInstance, month: str) -> None:
    result = dg.materialize(
        [raw_zips, kline_csv, klines],
        partition_key=str(series_month_key(BTC.key, month)),
        instance=instance,
        resources=kit.resources,
    )
    assert result.success
    _history_derived(kit, instance, month)


def _requested(
    location: dg.Definitions, result: dg.EvaluateAutomationConditionsResult
) -> dict[str, list[str]]:
    """Asset → requested partition keys (``[]``: an unpartitioned asset, requested whole)."""
    out = {}
    for key in location.resolve_asset_graph().get_all_asset_keys():
        partitions = result.get_requested_partitions(key)
        if partitions:
            out[key.to_user_string()] = sorted(str(p) for p in partitions if p is not None)
    return out


def test_a_new_month_requests_exactly_what_depends_on_it(
    make_store: Callable[..., HistoryKit], monkeypatch: pytest.MonkeyPatch, tmp_path_factory
) -> None:
    monkeypatch.setenv("TP_AUTOMATION", "on")
    location = defs()
    kit = make_store(universe=["BTCUSDT"])
    with dg.DagsterInstance.local_temp(str(tmp_path_factory.mktemp("home"))) as instance:
        instance.add_dynamic_partitions(series_partitions.name or "series", [BTC.key])
        for month in (JAN, FEB):
            _history(kit, instance, month)
        tuned = dg.materialize(
            [strategy_results],
            partition_key=str(family_series_key(FAMILY, BTC.key)),
            instance=instance,
            resources=kit.resources,
            run_config=ops_config(strategy_results=TINY),
        )
        assert tuned.success
        # the study is split by the labels regime_periods stored, not labelled again
        tmeta = tuned.asset_materializations_for_node("strategy_results")[0].metadata
        assert "stored by regime_periods" in str(tmeta["regime_labels"].value)
        by_regime = tmeta["oos_by_regime"]
        assert isinstance(by_regime, dg.TableMetadataValue)
        assert [c.name for c in by_regime.schema.columns][:2] == ["strategy", "regime"]
        ranked = dg.materialize(
            [performance_matrix, top_strategies],
            instance=instance,
            resources=kit.resources,
            run_config=ops_config(top_strategies={"min_trades": 0}),
        )
        assert ranked.success
        mmeta = ranked.asset_materializations_for_node("performance_matrix")[0].metadata
        assert mmeta["series_without_labels"].value == "none"
        for name in RECORDED:
            _record(instance, name)

        first = dg.evaluate_automation_conditions(
            defs=location, instance=instance, evaluation_time=T0
        )
        print("tick 1 (nothing new):", _requested(location, first))
        assert _requested(location, first) == {}

        # March lands: its daily zips, fetched, extracted and converted like any month
        result = dg.materialize(
            [raw_zips, kline_csv, klines],
            partition_key=str(series_month_key(BTC.key, MAR)),
            instance=instance,
            resources=kit.resources,
        )
        assert result.success
        tick = first.cursor

        def evaluate(at: datetime) -> dict[str, list[str]]:
            nonlocal tick
            result = dg.evaluate_automation_conditions(
                defs=location, instance=instance, evaluation_time=at, cursor=tick
            )
            tick = result.cursor
            return _requested(location, result)

        march = f"{MAR}|{BTC.key}"
        # 1. the month's features, regimes and cross-asset table; nothing downstream yet
        requested = evaluate(T1)
        print("tick 2 (March landed):", requested)
        assert requested == {
            "features": [march],
            "regime_periods": [march],
            "market_correlation": [MAR],
        }
        _history_derived(kit, instance, MAR)
        # 2. the series' tuned study (only the family tuned before), once its regimes are stored
        requested = evaluate(T1 + timedelta(minutes=1))
        print("tick 3:", requested)
        assert requested == {"strategy_results": [f"{FAMILY}|{BTC.key}"]}
        # the stages below are recorded (runless), not run: see the module docstring
        _record(instance, "strategy_results", str(family_series_key(FAMILY, BTC.key)))
        later = []
        for minute in (2, 3):
            requested = evaluate(T1 + timedelta(minutes=minute))
            later.append(requested)
            for name in requested:
                _record(instance, name)
        print("ticks 4, 5:", later)
        # 3. everything downstream, unpartitioned, in one run (Dagster orders it by the graph):
        # the matrix, the top, the training set, the selector (its gate decides promotion),
        # the assignments and the replay; then nothing more
        assert later == [
            {
                "performance_matrix": [],
                "top_strategies": [],
                "selector_training_set": [],
                "selector_model": [],
                "bot_assignments": [],
                "paper_replay_report": [],
            },
            {},
        ]


def _history_derived(kit: HistoryKit, instance: dg.DagsterInstance, month: str) -> None:
    key = series_month_key(BTC.key, month)
    result = dg.materialize(
        [features, regime_periods], partition_key=str(key), instance=instance,
        resources=kit.resources,
    )  # fmt: skip
    assert result.success
    result = dg.materialize(
        [market_correlation], partition_key=month, instance=instance, resources=kit.resources
    )
    assert result.success


def _record(instance: dg.DagsterInstance, name: str, partition: str | None = None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(name, partition=partition))


def test_automation_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TP_AUTOMATION", raising=False)
    graph = defs().resolve_asset_graph()
    conditions = {
        k.to_user_string(): graph.get(k).automation_condition
        for k in graph.get_all_asset_keys()
        if graph.get(k).automation_condition is not None
    }
    assert conditions == {}
    monkeypatch.setenv("TP_AUTOMATION", "off")
    graph = defs().resolve_asset_graph()
    assert all(graph.get(k).automation_condition is None for k in graph.get_all_asset_keys())


def test_a_bad_switch_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env({"TP_AUTOMATION": "ON "}).automation
    with pytest.raises(SettingsError, match="TP_AUTOMATION must be on or off, got 'yes please'"):
        Settings.from_env({"TP_AUTOMATION": "yes please"})
    monkeypatch.setenv("TP_AUTOMATION", "yes please")
    with pytest.raises(Exception) as failed:
        defs()  # the location does not load
    causes = []
    error: BaseException | None = failed.value
    while error is not None:
        causes.append(error)
        error = error.__cause__
    assert any(isinstance(e, SettingsError) for e in causes)
