"""Every verb finds its paths by one rule: flag > env > default (``settings.resolve_settings``).

The bug this pins: with ``TP_HISTORY_DIR`` set, ``backtest --data-dir`` read history from
``TP_HISTORY_DIR`` while ``regimes --data-dir`` read it from the data dir.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trading_pipeline.backtest.synthetic import random_walk_bars
from trading_pipeline.cli import main
from trading_pipeline.history.layout import Series
from trading_pipeline_tests.fakes.store import write_store

BTC = Series("spot", "BTCUSDT", "1h")
STORE = ["--symbol", "BTCUSDT", "--interval", "1h", "--json"]


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Two stores of different lengths: one under the env's history dir, one under a data dir."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    env_history, flag_data, flag_history = tmp_path / "env-h", tmp_path / "d", tmp_path / "h"
    write_store(env_history, BTC, random_walk_bars(300, seed=1, start=start))
    write_store(flag_data / "history", BTC, random_walk_bars(500, seed=2, start=start))
    write_store(flag_history, BTC, random_walk_bars(700, seed=3, start=start))
    monkeypatch.setenv("TP_DATA_DIR", str(tmp_path / "env-d"))
    monkeypatch.setenv("TP_HISTORY_DIR", str(env_history))
    return {"data": flag_data, "history": flag_history}


def _bars(capsys: pytest.CaptureFixture[str], *argv: str) -> int:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return int(json.loads(capsys.readouterr().out)["bars"])


@pytest.mark.parametrize(
    "verb", [["backtest", "--strategy", "sma_cross"], ["regimes"]], ids=lambda v: v[0]
)
def test_flag_beats_env_beats_default_for_every_reader(
    verb: list[str], dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _bars(capsys, *verb, *STORE) == 300  # env: TP_HISTORY_DIR
    assert _bars(capsys, *verb, *STORE, "--data-dir", str(dirs["data"])) == 500  # beats env
    both = ["--data-dir", str(dirs["data"]), "--history-dir", str(dirs["history"])]
    assert _bars(capsys, *verb, *STORE, *both) == 700  # the named folder beats --data-dir


def test_data_layout_prints_the_resolved_paths(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["data-layout", "--json"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["history"] == str(tmp_path / "env-h") and env["bots"] == str(tmp_path / "env-d/bots")
    assert main(["data-layout", "--data-dir", str(dirs["data"]), "--json"]) == 0
    flag = json.loads(capsys.readouterr().out)
    assert flag["history"] == str(dirs["data"] / "history")
    assert flag["optuna"] == f"journal:{(dirs['data'] / 'optuna/studies.log').resolve()}"
