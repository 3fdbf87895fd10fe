"""No family may use future bars: signals on truncated data equal the full-data signals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trading_pipeline.backtest.engine import lookahead_check
from trading_pipeline.cli import main
from trading_pipeline.strategies.registry import FAMILIES, load_strategy_file
from trading_pipeline_tests.fakes.bars import make_bars

LEAKY = Path(__file__).parent / "leaky_strategy.py"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_has_no_lookahead(name: str) -> None:
    bars = make_bars(1500, seed=11)
    fam = FAMILIES[name]
    report = lookahead_check(fam, bars, fam.default_params(), points=25)
    assert report.clean, report.describe()
    assert len(report.points) > 10


def test_sma_cross_with_filters_has_no_lookahead() -> None:
    bars = make_bars(1500, seed=12)
    params = {"fast": 5, "slow": 30, "trend": 100, "vol_window": 20, "atr_mult": 2.0}
    assert lookahead_check("sma_cross", bars, params).clean


def test_leaky_strategy_is_caught() -> None:
    fam = load_strategy_file(LEAKY)["peek_next_close"]
    report = lookahead_check(fam, make_bars(500, seed=5), {}, points=20)
    assert not report.clean
    assert report.first_leak_bar is not None
    assert report.first_leak_bar in report.leaks  # the truncated run's last bar differs
    assert "first leaking bar" in report.describe()


def test_lookahead_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "bars.parquet"
    make_bars(1500, seed=11).write_parquet(data)
    args = ["lookahead", "--data", str(data), "--samples", "1"]
    assert main([*args, "--strategy", "sma_cross"]) == 0
    out = capsys.readouterr().out
    assert "sma_cross v1: CLEAN" in out and "parameter sets" in out
    code = main([*args, "--strategy", "peek_next_close", "--strategy-file", str(LEAKY)])
    assert code == 1
    out = capsys.readouterr().out
    assert "LEAKY" in out and "lookahead in flags at bar" in out
    assert (
        main([*args, "--strategy", "peek_next_close", "--strategy-file", str(LEAKY), "--json"]) == 1
    )
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "leaky" and report["findings"][0]["field"] == "flags"
    assert main(["lookahead", "--strategy", "nope"]) == 2
    assert "unknown strategy" in capsys.readouterr().err
