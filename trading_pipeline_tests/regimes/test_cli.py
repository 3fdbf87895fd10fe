"""``trading-pipeline regimes``: from a file and from the store, table and JSON, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.cli import main
from trading_pipeline.history.layout import Series
from trading_pipeline.regimes.synthetic import synthetic_bars
from trading_pipeline_tests.fakes.store import write_store


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars()


@pytest.fixture(scope="module")
def data_file(bars: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("candles") / "BTCUSDT-1h.parquet"
    bars.write_parquet(path)
    return path


@pytest.fixture(scope="module")
def data_dir(bars: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_store(root / "history", Series("spot", "BTCUSDT", "1h"), bars)
    return root


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_json_from_file(
    capsys: pytest.CaptureFixture[str], data_file: Path, bars: pl.DataFrame
) -> None:
    out = _json(capsys, ["regimes", "--data", str(data_file), "--json"])
    assert out["bars"] == bars.height
    assert sum(p["bars"] for p in out["periods"]) == bars.height
    assert {"start", "end", "regime", "return", "volatility", "bars"} <= set(out["periods"][0])
    assert sum(out["share"].values()) == pytest.approx(1.0)
    assert out["labeller"] == "rules"


def test_store_equals_file_and_range(
    capsys: pytest.CaptureFixture[str], data_file: Path, data_dir: Path
) -> None:
    args = ["--from", "2021-01-01", "--to", "2021-03-31", "--json"]
    from_file = _json(capsys, ["regimes", "--data", str(data_file), *args])
    from_store = _json(
        capsys,
        ["regimes", "--symbol", "btcusdt", "--interval", "1h", "--data-dir", str(data_dir), *args],
    )
    assert from_file["periods"] == from_store["periods"]
    assert from_file["periods"][0]["start"] == "2021-01-01T00:00:00+00:00"
    assert from_file["periods"][-1]["end"] == "2021-03-31T23:00:00+00:00"
    # the bars before --from warm the labeller up: nothing in range is "unknown"
    assert "unknown" not in from_file["share"]


@pytest.mark.slow  # fits a Gaussian mixture
def test_gmm_and_table(capsys: pytest.CaptureFixture[str], data_file: Path) -> None:
    assert main(["regimes", "--data", str(data_file), "--labeller", "gmm"]) == 0
    text = capsys.readouterr().out
    assert "regime periods (gmm)" in text and "share of time" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["regimes"], "either --data"),
        (["regimes", "--data", "/no/such.feather"], "no such file"),
        (["regimes", "--symbol", "BTCUSDT"], "--interval"),
        (["regimes", "--data", "{file}", "--labeller", "hmm2"], "unknown labeller"),
        (["regimes", "--data", "{file}", "--from", "2021-13-01"], "--from must be a date"),
        (["regimes", "--data", "{file}", "--from", "2021-02-01", "--to", "2021-01-01"], "after"),
        (["regimes", "--data", "{file}", "--from", "2030-01-01"], "no candles"),
        (
            ["regimes", "--symbol", "ETHUSDT", "--interval", "1h", "--data-dir", "{dir}"],
            "no history",
        ),
    ],
)
def test_bad_input_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    data_file: Path,
    data_dir: Path,
    argv: list[str],
    message: str,
) -> None:
    before = sorted(p.stat().st_mtime_ns for p in data_dir.rglob("*"))
    argv = [a.format(file=data_file, dir=data_dir) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert sorted(p.stat().st_mtime_ns for p in data_dir.rglob("*")) == before
