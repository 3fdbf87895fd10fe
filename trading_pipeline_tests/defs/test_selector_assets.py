"""The selector assets in-process: a tiny real discovery (Optuna journal, MLflow SQLite) →
``selector_training_set`` → ``selector_model`` registered behind the ``promotion_gate`` check;
then the ``selector train`` command on the same data dir, refused by the gate (no better)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import dagster as dg
import pytest

from trading_pipeline.defs.discovery.assets import strategy_results, top_strategies
from trading_pipeline.defs.discovery.partitions import family_series_key
from trading_pipeline.defs.selector.assets import (
    GATE_CHECK,
    selector_model,
    selector_training_set,
)
from trading_pipeline.selector.dataset import SelectorDataset
from trading_pipeline.selector.model import MODEL_NAME
from trading_pipeline.settings import DataLayout
from trading_pipeline_tests.defs.conftest import BTC, discovery_resources, ops_config
from trading_pipeline_tests.defs.readable import problems

pytestmark = pytest.mark.slow  # Dagster instance runs

FAMILIES = ("sma_cross", "momentum")  # bot1's and bot3's families, both allowed on BTCUSDT
TINY = {"trials": 6, "folds": 2, "seed": 3}
MODEL_CONFIG = {"with_gradient_boosting": False, "cv_splits": 3}


def _check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    evals = result.get_asset_check_evaluations()
    assert len(evals) == 1 and evals[0].check_name == GATE_CHECK
    return evals[0]


def test_discovery_to_selector_model_and_the_gate(
    instance: dg.DagsterInstance,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    resources = discovery_resources(data_dir)
    for family in FAMILIES:
        result = dg.materialize(
            [strategy_results],
            partition_key=str(family_series_key(family, BTC.key)),
            instance=instance,
            resources=resources,
            run_config=ops_config(strategy_results=TINY),
        )
        assert result.success

    result = dg.materialize(
        [selector_training_set, selector_model],
        instance=instance,
        resources=resources,
        run_config=ops_config(selector_model=MODEL_CONFIG),
    )
    assert result.success
    tmeta = result.asset_materializations_for_node("selector_training_set")[0].metadata
    ds = SelectorDataset.load(data_dir / "selector")
    assert tmeta["rows"].value == ds.n >= 30
    assert {c.id for c in ds.candidates} == {"cash", *(f"{f}@{BTC.key}" for f in FAMILIES)}
    candidates = tmeta["candidates"]
    assert isinstance(candidates, dg.TableMetadataValue)
    assert {r.data["candidate"] for r in candidates.records} == {c.id for c in ds.candidates}
    # the candidates were chosen on the returns before the held-out period the model uses
    assert tmeta["candidate_cutoff"].value == ds.selection["cutoff"]
    assert "before the held-out cut-off" in str(tmeta["candidate_selection"].value)
    assert set(tmeta["partitions"].value.split(", ")) == {
        str(family_series_key(f, BTC.key)) for f in FAMILIES
    }
    runs = str(tmeta["discovery_run_links"].value)
    assert "(http://127.0.0.1:3000/assets/strategy_results?view=partitions&partition=" in runs
    assert runs.count("[MLflow run](http://127.0.0.1:5000/#/runs/") == len(FAMILIES)

    mmeta = result.asset_materializations_for_node("selector_model")[0].metadata
    assert str(mmeta["holdout"].value).startswith(str(ds.candidate_cutoff))
    assert mmeta["model_version"].value == 1
    if mmeta["beats_baselines"].value:
        assert mmeta["promoted"].value is True
    else:  # lost to a baseline: never champion; the best deployable baseline stands instead
        assert mmeta["promoted"].value is False
        assert "loses to the baseline" in mmeta["gate_reason"].value
        assert mmeta["policy_version"].value == 2 and mmeta["policy_promoted"].value is True
    table = mmeta["comparison"]
    assert isinstance(table, dg.TableMetadataValue)
    policies = {r.data["policy"] for r in table.records}
    for policy in ("selector", "single_best", "regime_lookup", "cash", "buy_and_hold"):
        assert any(str(p).startswith(policy) for p in policies), policy
    assert problems(tmeta) == [] and problems(mmeta) == []
    image = mmeta["confusion_matrix"].value
    assert image.startswith("![confusion matrix](data:image/png;base64,")
    assert base64.b64decode(image.split(",", 1)[1].rstrip(")"))[:4] == b"\x89PNG"
    run_id = mmeta["mlflow_run_id"].value
    assert run_id and run_id in mmeta["mlflow_run"].value
    check = _check(result)
    assert check.passed is mmeta["promoted"].value
    assert check.metadata["candidate_version"].value == 1

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=DataLayout.under(data_dir).mlflow_tracking_uri)
    run = client.get_run(run_id)
    # the page shows it to 4 significant digits, the run holds it exactly
    assert mmeta["heldout_net_return"].value == pytest.approx(
        run.data.metrics["heldout_net_return"], rel=1e-3
    )
    assert str(family_series_key(FAMILIES[0], BTC.key)) in run.data.params["data_partitions"]
    assert run.data.tags["dagster_run_id"] == result.run_id
    assert run.data.tags["dagster.run_url"] == f"http://127.0.0.1:3000/runs/{result.run_id}"
    assert run.data.tags["mlflow.source.type"] == "JOB"
    selector_dir = str(DataLayout.under(data_dir).selector_dir)
    assert {i.dataset.source for i in run.inputs.dataset_inputs} == {f'{{"uri": "{selector_dir}"}}'}
    assert "Held-out comparison" in client.get_model_version("strategy-selector", "1").description
    assert mmeta["mlflow_run"].value == (
        f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run_id}"
        "?workflowType=machine_learning"
    )
    assert mmeta["model"].value == "http://127.0.0.1:5000/#/models/strategy-selector/versions/1"

    # the same data again: no better than the champion → registered, refused, check fails (WARN)
    again = dg.materialize(
        [selector_model],
        instance=instance,
        resources=resources,
        run_config=ops_config(selector_model=MODEL_CONFIG),
    )
    assert again.success
    check = _check(again)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    won = bool(mmeta["beats_baselines"].value)
    champion = 1 if won else 2  # the model, or the baseline policy registered in its place
    if won:
        assert check.metadata["champion_version"].value == 1
        assert "does not beat champion" in check.metadata["reason"].value
    else:
        assert "loses to the baseline" in check.metadata["reason"].value
        ameta = again.asset_materializations_for_node("selector_model")[0].metadata
        assert ameta["policy_promoted"].value is False  # a tie with the standing policy
    assert int(client.get_model_version_by_alias(MODEL_NAME, "champion").version) == champion

    # the command line reads the same discovery outputs through top_strategies.json
    ok = dg.materialize(
        [top_strategies],
        instance=instance,
        resources=resources,
        run_config=ops_config(top_strategies={"min_trades": 0}),
    )
    assert ok.success
    from trading_pipeline import cli

    for var in ("TP_MLFLOW_TRACKING_URI", "TP_OPTUNA_STORAGE", "TP_HISTORY_DIR"):
        monkeypatch.delenv(var, raising=False)
    capsys.readouterr()
    assert cli.main(["selector", "train", "--data-dir", str(data_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == (3 if won else 5) and out["gate"]["promote"] is False
    assert out["champion_rescored"] is True
    assert set(out["candidates"]) == {c.id for c in ds.candidates}
    assert int(client.get_model_version_by_alias(MODEL_NAME, "champion").version) == champion
