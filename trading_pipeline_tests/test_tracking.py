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
