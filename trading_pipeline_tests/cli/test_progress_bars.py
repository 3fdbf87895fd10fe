"""`tune`, `tune-worker` and `sweep` draw a progress bar on stderr where a person watches
(``TP_PROGRESS=1`` stands for a terminal here), and stay quiet otherwise; stdout is unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trading_pipeline.cli import main
from trading_pipeline.regimes.synthetic import synthetic_bars

pytestmark = pytest.mark.slow  # an Optuna study and an MLflow store

SWEEP = ["sweep", "--strategy", "sma_cross", "--grid", "fast=5:20:5", "--grid", "slow=10:40:10"]


@pytest.fixture()
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "bars.parquet"
    synthetic_bars((("bull", 900), ("bear", 900), ("sideways", 700)), seed=3).write_parquet(path)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    assert main(argv) == 0
    out, err = capsys.readouterr()
    return json.loads(out), err


def test_sweep_bar_advances_to_100_and_rows_stay_the_same(
    data_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [*SWEEP, "--data", str(data_file), "--json"]
    monkeypatch.delenv("TP_PROGRESS", raising=False)
    quiet, err = _run(argv, capsys)  # captured stderr is no terminal: no bar
    assert "%" not in err and "sweep sma_cross" not in err
    monkeypatch.setenv("TP_PROGRESS", "1")
    shown, err = _run(argv, capsys)
    assert "sweep sma_cross: 12 combos × 2,500 bars" in err and "100%" in err
    # the grid ran in pieces for the bar: the same rows in the same order
    assert [r["params"] for r in shown["results"]] == [r["params"] for r in quiet["results"]]
    assert [r["sharpe"] for r in shown["results"]] == [r["sharpe"] for r in quiet["results"]]
    assert shown["combos"] == quiet["combos"] == 12
    monkeypatch.setenv("TP_PROGRESS", "0")
    assert "%" not in _run(argv, capsys)[1]


def test_tune_and_worker_bars_end_at_100(
    data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    store = tmp_path / "data"
    argv = ["tune", "--strategy", "sma_cross", "--data", str(data_file), "--interval", "1h"]
    argv += ["--data-dir", str(store), "--trials", "6", "--folds", "2", "--json"]
    monkeypatch.setenv("TP_PROGRESS", "1")
    doc, err = _run(argv, capsys)
    assert "tune sma_cross file-bars-1h: 6 trials × 2 folds" in err and "100%" in err
    worker = ["tune-worker", "--study", doc["study"], "--trials", "3", "--json"]
    worker += ["--storage", f"journal:{store / 'optuna' / 'studies.log'}"]
    worker += ["--data", str(data_file), "--interval", "1h", "--data-dir", str(store)]
    out, err = _run(worker, capsys)
    assert out["trials"] == 6 and f"tune-worker {doc['study']}: 3 trials × 2 folds" in err
    assert "100%" in err
    monkeypatch.delenv("TP_PROGRESS")
    out, err = _run(worker, capsys)
    assert out["trials"] == 6 and "%" not in err
