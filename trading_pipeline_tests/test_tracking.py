"""The tracking port against a real embedded MLflow store (SQLite + local artifacts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trading_pipeline.tracking import InMemoryTracker, MlflowTracker, default_tracking_uri

pytestmark = pytest.mark.slow  # an MLflow store


def test_mlflow_tracker_records_params_metrics_and_artifacts(tmp_path: Path) -> None:
    uri = default_tracking_uri(tmp_path)
    tracker = MlflowTracker(uri, "unit-test")
    run_id = tracker.start_run("study-a", tags={"study": "sma_cross-v1"})
    tracker.log_params(run_id, {"fast": 10, "slow": 50})
    tracker.log_metrics(run_id, {"oos_sharpe": 0.8, "broken": float("nan")})
    note = tmp_path / "trials.csv"
    note.write_text("number,value\n0,0.5\n")
    tracker.log_artifact(run_id, note)
    tracker.end_run(run_id)

    again = MlflowTracker(uri, "unit-test")  # reopening finds the same experiment
    assert again.experiment_id == tracker.experiment_id
    run = again.client.get_run(run_id)
    assert run.data.params == {"fast": "10", "slow": "50"}
    assert run.data.metrics == {"oos_sharpe": 0.8}
    assert run.data.tags["study"] == "sma_cross-v1" and run.data.tags["code_version"]
    assert run.info.status == "FINISHED"
    artifacts = [a.path for a in again.client.list_artifacts(run_id)]
    assert artifacts == ["trials.csv"]
    stored = list((tmp_path / "mlflow" / "artifacts").rglob("trials.csv"))
    assert len(stored) == 1 and stored[0].read_text() == note.read_text()


def test_in_memory_tracker_drops_non_finite_metrics() -> None:
    t = InMemoryTracker()
    rid = t.start_run("x")
    t.log_metrics(rid, {"a": 1.0, "b": float("inf")})
    t.end_run(rid)
    assert t.runs[rid]["metrics"] == {"a": 1.0}
    assert t.runs[rid]["status"] == "FINISHED"


def test_runs_are_model_training_with_source_description_steps_and_data(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from trading_pipeline.tracking import (
        EXPERIMENT_KIND_TAG,
        NOTE_TAG,
        SOURCE_NAME_TAG,
        SOURCE_TYPE_TAG,
        TRAINING_KIND,
        DatasetRef,
    )

    uri = default_tracking_uri(tmp_path)
    # an experiment made before the kind was set gets it when reopened
    old = MlflowClient(uri).create_experiment("older", artifact_location=tmp_path.as_uri())
    assert EXPERIMENT_KIND_TAG not in MlflowClient(uri).get_experiment(old).tags
    tracker = MlflowTracker(uri, "older")
    assert tracker.experiment_id == old
    fresh = MlflowTracker(uri, "fresh")
    for t in (tracker, fresh):
        assert t.client.get_experiment(t.experiment_id).tags[EXPERIMENT_KIND_TAG] == TRAINING_KIND

    run_id = fresh.start_run("study-a", description="what this run is")
    fresh.log_metric_steps(run_id, "fold_test_sharpe", [0.5, float("nan"), -0.25])
    bars = tmp_path / "bars"
    bars.mkdir()
    fresh.log_dataset(
        run_id,
        DatasetRef(
            "SYNUSDT bars", str(bars), "ab" * 32, context="walk_forward", profile={"rows": 3}
        ),
    )
    fresh.end_run(run_id)
    run = fresh.client.get_run(run_id)
    assert run.data.tags[NOTE_TAG] == "what this run is"
    assert run.data.tags[SOURCE_TYPE_TAG] == "LOCAL" and run.data.tags[SOURCE_NAME_TAG]
    history = fresh.client.get_metric_history(run_id, "fold_test_sharpe")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (2, -0.25)]  # NaN dropped
    (inp,) = run.inputs.dataset_inputs
    assert inp.dataset.name == "SYNUSDT bars" and inp.dataset.digest == ("ab" * 32)[:36]
    assert str(bars) in inp.dataset.source and '"rows": 3' in inp.dataset.profile
    assert {t.key: t.value for t in inp.tags}["mlflow.data.context"] == "walk_forward"
