"""``backtest --export trades`` and ``show-trades``: the trade list as a file, and back."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.backtest import engine
from trading_pipeline.backtest.engine import CostModel
from trading_pipeline.cli import main
from trading_pipeline_tests.fakes.bars import make_bars

ARGS = ["backtest", "--strategy", "sma_cross", "--param", "fast=5", "--param", "slow=20"]


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars(2000, seed=21)


@pytest.fixture()
def data_file(tmp_path: Path, bars: pl.DataFrame) -> Path:
    path = tmp_path / "bars.parquet"
    bars.write_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_exported_trades_match_the_engine_and_sum_to_the_pnl(
    data_file: Path, bars: pl.DataFrame, tmp_path: Path, suffix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / f"trades{suffix}"
    argv = [*ARGS, "--data", str(data_file), "--export", "trades", "--export-file", str(out)]
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["trades_file"] == str(out)
    table = pl.read_csv(out) if suffix == ".csv" else pl.read_parquet(out)
    ref = engine.backtest(
        bars, "sma_cross", {"fast": 5, "slow": 20}, interval="1h", costs=CostModel(), detail=True
    )
    assert ref.trades is not None
    assert table.height == ref.trades.height == doc["trades"]
    assert table["pnl"].to_list() == pytest.approx(ref.trades["pnl"].to_list(), rel=1e-12)
    assert table["trade"].to_list() == list(range(1, table.height + 1))
    assert set(table["strategy"].to_list()) == {"sma_cross"}
    assert json.loads(table["params"][0]) == doc["params"]  # every parameter, defaults too
    assert doc["params"]["fast"] == 5 and doc["params"]["slow"] == 20
    # closed trades' PnL and the open one's mark explain the equity change
    assert table["pnl"].sum() == pytest.approx(doc["final_equity"] - 1000.0, abs=1e-6)


def test_show_trades_prints_the_summary(
    data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.parquet"
    assert (
        main([*ARGS, "--data", str(data_file), "--export", "trades", "--export-file", str(out)])
        == 0
    )
    assert "show-trades" in capsys.readouterr().out
    assert main(["show-trades", str(out), "--tail", "3"]) == 0
    text = capsys.readouterr().out
    assert "trades," in text and "won" in text and "sma_cross" in text
    assert main(["show-trades", str(out), "--tail", "0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    table = pl.read_parquet(out)
    assert doc["summary"]["trades"] == table.height == len(doc["trades"])
    assert doc["summary"]["wins"] == int((table["pnl"] > 0).sum())


def test_default_export_goes_under_the_data_dir(
    data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    argv = [*ARGS, "--data", str(data_file), "--export", "trades", "--data-dir", str(data_dir)]
    assert main([*argv, "--json"]) == 0
    path = Path(json.loads(capsys.readouterr().out)["trades_file"])
    assert path.parent == data_dir / "backtest_results" and path.suffix == ".parquet"
    assert path.name.startswith("sma_cross-bars-") and path.is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--export", "signals"], "only 'trades'"),
        (["--export", "trades", "--export-file", "x.xlsx"], ".parquet or .csv"),
        (["--export-file", "x.csv"], "needs --export trades"),
    ],
)
def test_bad_export_options_fail_in_one_line_and_write_nothing(
    data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    extra: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert main([*ARGS, "--data", str(data_file), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before


def test_show_trades_refuses_what_is_not_a_trade_file(
    data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show-trades", str(data_file)]) == 2  # bars, not trades
    assert "not a trade export" in capsys.readouterr().err
    assert main(["show-trades", str(tmp_path / "none.csv")]) == 2
    assert "no trade file" in capsys.readouterr().err
