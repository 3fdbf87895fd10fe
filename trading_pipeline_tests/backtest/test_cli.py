"""The ``backtest`` and ``sweep`` verbs: data options, JSON output, one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.cli import main
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.store import write_store


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars(2500, seed=9)


@pytest.fixture()
def data_file(tmp_path: Path, bars: pl.DataFrame) -> Path:
    path = tmp_path / "bars.parquet"
    bars.write_parquet(path)
    return path


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_backtest_json_from_file(data_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(
        [
            "backtest",
            "--strategy",
            "sma_cross",
            "--param",
            "fast=5",
            "--param",
            "slow=20",
            "--data",
            str(data_file),
        ],
        capsys,
    )
    assert doc["strategy"] == "sma_cross" and doc["params"]["fast"] == 5
    assert doc["interval"] == "1h" and doc["bars"] == 2500 and doc["cash"] == 1000.0
    assert doc["trades"] > 10 and doc["final_equity"] > 0
    assert doc["costs"] == {"fee": 0.001, "slippage_bps": 2.0, "fill": "open"}
    bh = doc["buy_and_hold"]
    assert bh["trades"] == 1 and bh["exposure"] > 0.99
    # the same run with higher fees ends lower: costs are really applied
    dear = run_json(
        [
            "backtest",
            "--strategy",
            "sma_cross",
            "--param",
            "fast=5",
            "--param",
            "slow=20",
            "--data",
            str(data_file),
            "--fee",
            "0.005",
        ],
        capsys,
    )
    assert dear["final_equity"] < doc["final_equity"] and dear["trades"] == doc["trades"]


def test_backtest_risk_options(data_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["backtest", "--strategy", "sma_cross", "--data", str(data_file)]
    plain = run_json(base, capsys)
    stopped = run_json([*base, "--stop-loss", "0.003", "--max-holding-bars", "5"], capsys)
    assert stopped["risk"]["stop_loss"] == 0.003 and stopped["risk"]["max_holding_bars"] == 5
    assert stopped["exposure"] < plain["exposure"]  # stops and the holding limit cut exposure
    half = run_json([*base, "--size", "0.5"], capsys)
    assert half["exposure"] == plain["exposure"] and half["final_equity"] != plain["final_equity"]


def test_backtest_from_store_with_dates(
    tmp_path: Path, bars: pl.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    write_store(tmp_path / "history", "spot-BTCUSDT-1h", bars)
    doc = run_json(
        [
            "backtest",
            "--strategy",
            "ema_cross",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1h",
            "--data-dir",
            str(tmp_path),
            "--from",
            "2020-01-10",
            "--to",
            "2020-02-09",
            "--fill",
            "close",
        ],
        capsys,
    )
    assert doc["bars"] == 31 * 24
    assert doc["start"].startswith("2020-01-10") and doc["end"].startswith("2020-02-09 23:00")
    assert (
        main(
            [
                "backtest",
                "--strategy",
                "sma_cross",
                "--symbol",
                "BTCUSDT",
                "--interval",
                "1h",
                "--data-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert "buy_and_hold" in capsys.readouterr().out  # the human table


@pytest.mark.slow  # a full parameter grid
def test_sweep_json(data_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(
        [
            "sweep",
            "--strategy",
            "sma_cross",
            "--grid",
            "fast=5:20:5",
            "--grid",
            "slow=10:40:10",
            "--data",
            str(data_file),
            "--top",
            "3",
        ],
        capsys,
    )
    # fast 5,10,15,20 × slow 10,20,30,40 with fast < slow: 4 + 3 + 3 + 2 = 12
    assert doc["combos"] == 12 and len(doc["results"]) == 12 and len(doc["top"]) == 3
    # in-sample, and the best row's Sharpe deflated for the 12 combinations tried
    assert doc["in_sample"] is True and doc["deflated_sharpe"]["n_trials"] == 12
    assert 0.0 <= doc["deflated_sharpe"]["probability"] <= 1.0
    best = max(r["sharpe"] for r in doc["results"])
    assert doc["deflated_sharpe"]["sharpe_per_bar"] * (24 * 365) ** 0.5 == pytest.approx(
        best, rel=1e-3
    )
    assert doc["bars"] == 2500 and doc["seconds"] > 0
    pairs = {(r["params"]["fast"], r["params"]["slow"]) for r in doc["results"]}
    assert pairs == {
        (5, 10),
        (5, 20),
        (5, 30),
        (5, 40),
        (10, 20),
        (10, 30),
        (10, 40),
        (15, 20),
        (15, 30),
        (15, 40),
        (20, 30),
        (20, 40),
    }
    sharpes = [r["sharpe"] for r in doc["results"]]
    assert sharpes == sorted(sharpes, reverse=True)
    assert all("final_equity" in r and "trades" in r for r in doc["results"])
    assert (
        main(
            [
                "sweep",
                "--strategy",
                "rsi_reversion",
                "--grid",
                "window=7:21:7",
                "--data",
                str(data_file),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "combos/s" in out and "IN-SAMPLE" in out
    # window 7, 14, 21: the best row deflated for the 3 combinations, said to be in-sample
    assert "in-sample deflated Sharpe probability of the best row over 3 combinations" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backtest", "--strategy", "nope"], "unknown strategy"),
        (["backtest", "--strategy", "sma_cross", "--param", "speed=3"], "unknown parameter"),
        (["backtest", "--strategy", "sma_cross", "--param", "fast=1"], "outside its range"),
        (
            ["backtest", "--strategy", "sma_cross", "--param", "fast=30", "--param", "slow=30"],
            "fast < slow",
        ),
        (["backtest", "--strategy", "sma_cross", "--param", "fast"], "name=value"),
        (
            ["sweep", "--strategy", "sma_cross", "--grid", "fast=50:60", "--grid", "slow=10:20"],
            "grid is empty",
        ),
        (["sweep", "--strategy", "sma_cross", "--grid", "fast=a:b"], "numbers expected"),
        (["backtest", "--strategy", "sma_cross", "--fee", "-1"], "fee must be"),
        (["backtest", "--strategy", "sma_cross", "--fill", "later"], "fill must be"),
        (["backtest", "--strategy", "sma_cross", "--size", "2"], "size must be"),
        (["sweep", "--strategy", "sma_cross", "--stop-loss", "-0.1"], "stop_loss must be"),
        (["backtest", "--strategy", "sma_cross", "--interval", "7x"], "unknown interval"),
        (["backtest", "--strategy", "sma_cross", "--from", "yesterday"], "YYYY-MM-DD"),
    ],
)
def test_bad_input_exits_2(
    args: list[str], message: str, data_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--data", str(data_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_bad_data_exits_2(
    tmp_path: Path, bars: pl.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.parquet"
    bars.head(0).write_parquet(empty)
    nan = tmp_path / "nan.parquet"
    bars.with_columns(
        pl.when(pl.int_range(pl.len()) == 100)
        .then(float("nan"))
        .otherwise(pl.col("close"))
        .alias("close")
    ).write_parquet(nan)
    cases = [
        (["--data", str(empty)], "no candles"),
        (["--data", str(nan)], "NaN"),
        (["--data", str(tmp_path / "missing.parquet")], "no such file"),
        (["--symbol", "BTCUSDT", "--interval", "1h", "--data-dir", str(tmp_path)], "no history"),
        ([], "give --data FILE, or --symbol and --interval"),
    ]
    for extra, message in cases:
        assert main(["backtest", "--strategy", "sma_cross", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err, err
