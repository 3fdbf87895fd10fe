"""The main job's own input: the discovery budget and the stages, checked before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from trading_pipeline.defs.chain import DEFAULT_FAMILIES, Budget
from trading_pipeline.defs.main_job import main


def test_budget_comes_from_flags_then_environment_then_defaults() -> None:
    env = {"TP_MAIN_FAMILIES": "macd", "TP_MAIN_TRIALS": "5"}
    assert Budget.from_env({}) == Budget(DEFAULT_FAMILIES, 8, 4)
    assert Budget.from_env(env) == Budget(("macd",), 5, 4)
    assert Budget.from_env(env, families="sma_cross,momentum", folds="3") == Budget(
        ("sma_cross", "momentum"), 5, 3
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--trials", "0"],
        ["--trials", "many"],
        ["--folds", "1"],
        ["--families", "sma_cross,nope"],
        ["--stages", "history,nope"],
    ],
)
def test_bad_budget_or_stage_is_one_error_line_exit_2_nothing_written(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TP_DATA_DIR", str(tmp_path / "data"))
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []
