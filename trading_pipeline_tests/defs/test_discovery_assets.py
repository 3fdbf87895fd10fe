"""The discovery assets end to end, in-process: generated klines → tuned strategies in a real
Optuna journal and a real MLflow SQLite store → the regime matrix → the top strategies file."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from trading_pipeline.defs.discovery.assets import (
    performance_matrix,
    strategy_results,
    top_strategies,
)
from trading_pipeline.defs.discovery.partitions import TUNED_FAMILIES, family_series_key
from trading_pipeline.defs.resources import DataLake
from trading_pipeline.discovery.matrix import ALL, BENCHMARK
from trading_pipeline.discovery.report import EXPERIMENT
from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import code_fingerprint
from trading_pipeline.history.checksum import sha256_file
from trading_pipeline.settings import DataLayout
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.defs.conftest import BTC, discovery_resources, ops_config
from trading_pipeline_tests.defs.readable import problems

pytestmark = pytest.mark.slow  # Dagster instance runs

FAMILIES = ("sma_cross", "momentum")
TINY = {"trials": 6, "folds": 2, "seed": 3}


def test_klines_to_top_strategies(instance: dg.DagsterInstance, data_dir: Path) -> None:
    assert set(FAMILIES) <= set(TUNED_FAMILIES) and BENCHMARK not in TUNED_FAMILIES
    resources = discovery_resources(data_dir)
    run_ids = {}
    dagster_runs = {}
    for family in FAMILIES:
        key = family_series_key(family, BTC.key)
        result = dg.materialize(
            [strategy_results],
            partition_key=str(key),
            instance=instance,
            resources=resources,
            run_config=ops_config(strategy_results=TINY),
        )
        assert result.success
        meta = result.asset_materializations_for_node("strategy_results")[0].metadata
        code = code_fingerprint(get_family(family))[:8]
        assert meta["study"].value == f"{family}-v1-{BTC.key}-c{code}"
        assert meta["n_trials"].value == TINY["trials"] * TINY["folds"]
        summary = meta["summary"]
        assert isinstance(summary, dg.TableMetadataValue)
        assert [c.name for c in summary.schema.columns] == ["metric", "strategy", BENCHMARK]
        assert summary.records[0].data["metric"] == "sharpe"
        assert problems(meta) == []
        # the fold windows are UTC dates of the bars, contiguous test windows after train
        folds = meta["folds"]
        assert isinstance(folds, dg.TableMetadataValue)
        assert len(folds.records) == TINY["folds"]
        day = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?")
        for r in folds.records:
            window = [str(r.data[k]) for k in ("train_from", "train_to", "test_from", "test_to")]
            assert all(day.fullmatch(w) for w in window), window
            assert window == sorted(window) and window[1] < window[2]
        assert 0.0 <= meta["dsr_probability"].value <= 1.0
        run_ids[family] = meta["mlflow_run_id"].value
        dagster_runs[family] = (result.run_id, str(key))
        # a link a browser opens (TP_MLFLOW_UI_URL's default), not the store's URI
        assert re.fullmatch(
            rf"http://127\.0\.0\.1:5000/#/experiments/\d+/runs/{run_ids[family]}"
            r"\?workflowType=machine_learning",
            str(meta["mlflow_run"].value),
        )
        # each month the study read: a link to its klines partition and the file's sha256
        month = (
            "[spot-BTCUSDT-1h 2021-02](http://127.0.0.1:3000/assets/history/klines"
            "?view=partitions&partition=2021-02-01%7Cspot-BTCUSDT-1h)"
        )
        sha = sha256_file(
            DataLake(data_dir=str(data_dir)).layout.history.parquet_path(BTC, 2021, 2)
        )
        assert f"- {month}" in str(meta["data_partitions_links"].value)
        # the equity chart the run holds, short enough for the UI to show it inline
        equity = str(meta["oos_equity"].value)
        assert equity.endswith(
            f"(http://127.0.0.1:5000/get-artifact?path=oos_equity.png&run_uuid={run_ids[family]})"
        )
        assert len(equity) < 1000  # the UI's limit for inline Markdown
        rows = {r.data["month"]: r.data for r in meta["data_partitions"].records}  # type: ignore[attr-defined]
        assert rows["2021-02"]["sha256"] == sha
        assert rows["2021-02"]["klines_partition"] == "2021-02-01|spot-BTCUSDT-1h"

    # the MLflow runs exist in the SQLite store under the data dir, with the study's numbers
    from mlflow.tracking import MlflowClient

    db = data_dir / "mlflow" / "mlflow.db"
    assert db.is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{db.resolve()}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    for family, run_id in run_ids.items():
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["strategy"] == family and run.data.tags["series"] == BTC.key
        # … and links back to the Dagster run and partition that made it
        dagster_run, partition = dagster_runs[family]
        assert run.data.tags["dagster.run_url"] == f"http://127.0.0.1:3000/runs/{dagster_run}"
        assert run.data.tags["dagster.partition"] == partition
        assert run.data.tags["dagster.asset_url"].startswith(
            "http://127.0.0.1:3000/assets/strategy_results?view=partitions&partition="
        )
        assert "oos_sharpe" in run.data.metrics and "bh_sharpe" in run.data.metrics
        artifacts = {a.path for a in client.list_artifacts(run_id)}
        assert {"oos_equity.png", "trials.csv", "summary.json"} <= artifacts

    # every fold study is in the real journal file under the data dir
    import optuna

    storage = open_storage(None, data_dir=data_dir)
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    for family in FAMILIES:
        code = code_fingerprint(get_family(family))[:8]  # the strategy's source names its study
        assert {f"{family}-v1-{BTC.key}-c{code}-wf{k}of2" for k in (1, 2)} <= names

    result = dg.materialize(
        [performance_matrix, top_strategies],
        instance=instance,
        resources=resources,
        run_config=ops_config(top_strategies={"top": 3, "min_trades": 0}),
    )
    assert result.success

    layout = DataLayout.under(data_dir)
    matrix = pl.read_parquet(layout.performance_matrix_path)
    assert set(matrix["strategy"]) == {*FAMILIES, BENCHMARK}
    bh = matrix.filter(pl.col("strategy") == BENCHMARK)
    assert bh.height >= 2 and ALL in set(bh["regime"])  # a whole-period row and per regime
    for strategy in (*FAMILIES, BENCHMARK):
        rows = matrix.filter(pl.col("strategy") == strategy)
        whole = rows.filter(pl.col("regime") == ALL)["bars"].item()
        assert rows.filter(pl.col("regime") != ALL)["bars"].sum() == whole
    mmeta = result.asset_materializations_for_node("performance_matrix")[0].metadata
    assert mmeta["studies"].value == len(FAMILIES)
    sharpe = mmeta["sharpe_by_regime"]
    assert isinstance(sharpe, dg.TableMetadataValue)
    assert [c.name for c in sharpe.schema.columns][:2] == ["series", "strategy"]
    assert problems(mmeta) == []
    # the heatmap inline: a Markdown entry under the UI's 1,000 characters pointing at the
    # image its MLflow run holds; the same PNG self-contained in heatmap_png
    heatmap = mmeta["heatmap"].value
    assert len(heatmap) < 1000 and "/get-artifact?path=sharpe_by_regime.png" in heatmap
    assert mmeta["mlflow_run_id"].value in heatmap
    inline = mmeta["heatmap_png"].value
    assert inline.startswith("![sharpe by regime](data:image/png;base64,")
    png = base64.b64decode(inline.split(",", 1)[1].rstrip(")"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(layout.mlflow_tracking_uri)
    logged = client.download_artifacts(mmeta["mlflow_run_id"].value, "sharpe_by_regime.png")
    assert Path(logged).read_bytes() == png

    doc = json.loads(layout.top_strategies_path.read_text())
    assert doc["candidates"] == len(FAMILIES) and doc["rule"]["min_trades"] == 0
    assert [r["rank"] for r in doc["ranked"]] == [1, 2]
    assert {r["strategy"] for r in doc["ranked"]} == set(FAMILIES)
    for row in doc["ranked"]:
        assert row["mlflow_run_id"] == run_ids[row["strategy"]]
        assert row["series"] == BTC.key and isinstance(row["params"], dict) and row["params"]
        assert row["n_trials"] == TINY["trials"] * TINY["folds"]
    # a pure random walk: nothing survives the deflation for the trials run
    assert not any(r["robust"] for r in doc["ranked"])
    tmeta = result.asset_materializations_for_node("top_strategies")[0].metadata
    assert tmeta["candidates"].value == len(FAMILIES)
    ranking = tmeta["ranking"]
    assert isinstance(ranking, dg.TableMetadataValue)
    assert [c.name for c in ranking.schema.columns][:2] == ["rank", "strategy"]
    assert [r.data["rank"] for r in ranking.records] == [1, 2]
    assert problems(tmeta) == []
    assert not list((data_dir / "discovery").glob(".*.part"))  # nothing half-written left


def test_one_partition_reruns_alone_and_resumes(
    instance: dg.DagsterInstance, data_dir: Path
) -> None:
    """Re-running one family × series tops its studies up; nothing else is touched."""
    resources = discovery_resources(data_dir)
    key = str(family_series_key("ema_cross", BTC.key))
    first = dg.materialize(
        [strategy_results],
        partition_key=key,
        instance=instance,
        resources=resources,
        run_config=ops_config(strategy_results={**TINY, "trials": 4}),
    )
    more = dg.materialize(
        [strategy_results],
        partition_key=key,
        instance=instance,
        resources=resources,
        run_config=ops_config(strategy_results={**TINY, "trials": 6}),
    )
    m1 = first.asset_materializations_for_node("strategy_results")[0].metadata
    m2 = more.asset_materializations_for_node("strategy_results")[0].metadata
    assert m1["trials_run_now"].value == 4 * TINY["folds"]
    assert m2["trials_run_now"].value == 2 * TINY["folds"]  # topped up, not restarted
    assert m2["n_trials"].value == 6 * TINY["folds"]
    assert m1["mlflow_run_id"].value != m2["mlflow_run_id"].value
    import optuna

    storage = open_storage(None, data_dir=data_dir)
    groups = {s.study_name.rsplit("-wf", 1)[0] for s in optuna.get_all_study_summaries(storage)}
    code = code_fingerprint(get_family("ema_cross"))[:8]
    assert groups == {f"ema_cross-v1-{BTC.key}-c{code}"}


def test_sampler_and_batch_come_from_the_config(
    instance: dg.DagsterInstance, data_dir: Path
) -> None:
    """``sampler``/``batch`` in the asset's config choose how trials are drawn and evaluated
    (fast-random, 8 per fused call: the trials are the sampler's draws); a bad sampler fails
    the run with one line before any study exists."""
    import optuna

    from trading_pipeline.discovery.batch import draw

    resources = discovery_resources(data_dir)
    key = str(family_series_key("sma_cross", BTC.key))
    bad = dg.materialize(
        [strategy_results],
        partition_key=key,
        instance=instance,
        resources=resources,
        run_config=ops_config(strategy_results={**TINY, "sampler": "grid"}),
        raise_on_error=False,
    )
    assert not bad.success
    failure = bad.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and "unknown sampler 'grid'" in failure.message
    storage = open_storage(None, data_dir=data_dir)
    assert not optuna.get_all_study_summaries(storage)
    config = {**TINY, "sampler": "fast-random", "batch": 8}
    result = dg.materialize(
        [strategy_results],
        partition_key=key,
        instance=instance,
        resources=resources,
        run_config=ops_config(strategy_results=config),
    )
    meta = result.asset_materializations_for_node("strategy_results")[0].metadata
    assert meta["trials_run_now"].value == TINY["trials"] * TINY["folds"]
    family = get_family("sma_cross")
    study = optuna.load_study(study_name=f"{meta['study'].value}-wf1of2", storage=storage)
    want = [draw(family.space, TINY["seed"], n) for n in range(TINY["trials"])]
    assert [family.validate(t.params) for t in study.trials] == want


def test_the_lake_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from trading_pipeline.definitions import defs

    monkeypatch.setenv("TP_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("TP_OPTUNA_STORAGE", "postgresql://tp:secret@127.0.0.1:5432/optuna")
    monkeypatch.setenv("TP_MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    lake = defs().resources["lake"]
    assert isinstance(lake, DataLake)
    assert lake.layout.optuna_storage_url == "postgresql://tp:secret@127.0.0.1:5432/optuna"
    assert lake.layout.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert lake.run_link("1", "abc") == (
        "http://127.0.0.1:5000/#/experiments/1/runs/abc?workflowType=machine_learning"
    )
    assert lake.layout.discovery_dir == tmp_path / "d" / "discovery"
    monkeypatch.delenv("TP_OPTUNA_STORAGE")
    monkeypatch.delenv("TP_MLFLOW_TRACKING_URI")
    monkeypatch.setenv("TP_MLFLOW_UI_URL", "http://127.0.0.1:5005")
    monkeypatch.setenv("TP_DAGSTER_UI_URL", "http://127.0.0.1:3003")
    embedded = defs().resources["lake"]
    assert embedded.run_link("2", "x") == (
        "http://127.0.0.1:5005/#/experiments/2/runs/x?workflowType=machine_learning"
    )
    assert embedded.dagster_run_link("r") == "http://127.0.0.1:3003/runs/r"
    local = defs().resources["lake"].layout
    assert (
        local.optuna_storage_url
        == f"journal:{(tmp_path / 'd' / 'optuna' / 'studies.log').resolve()}"
    )
    assert (
        local.mlflow_tracking_uri
        == f"sqlite:///{(tmp_path / 'd' / 'mlflow' / 'mlflow.db').resolve()}"
    )
