"""``trading-pipeline venue fetch``: a fetch through the fake Coinbase, bad input, and a real kill."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.cli import main
from trading_pipeline.market.candles import load_store
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.coinbase import FakeCoinbase, running_fake_coinbase

pytestmark = pytest.mark.slow  # a local HTTP server (the fake venues)

ROOT = Path(__file__).resolve().parents[2]
HOURS = (31 + 29 + 31) * 24
OHLCV = ["open_time", "open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    df = make_bars(HOURS, seed=11, start=datetime(2024, 1, 1, tzinfo=UTC), price=42_000.0)
    return df.with_columns(pl.col("open", "high", "low", "close").round(2))


@pytest.fixture
def srv(bars: pl.DataFrame) -> Iterator[FakeCoinbase]:
    with running_fake_coinbase({"BTC-USD": bars}) as server:
        yield server


def _args(data_dir: Path, *extra: str, symbol: str = "BTC-USD") -> list[str]:
    return [
        "venue", "fetch", "--venue", "coinbase", "--symbol", symbol, "--interval", "1h",
        "--from", "2024-01-01", "--to", "2024-03-31", "--data-dir", str(data_dir), *extra,
    ]  # fmt: skip


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.parquet"))
    }


def test_fetch_writes_months_and_a_rerun_changes_nothing(
    srv: FakeCoinbase, bars: pl.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_args(tmp_path, "--base-url", srv.url)) == 0
    out = capsys.readouterr().out
    assert "coinbase-BTCUSD-1h: months 3 (3 written" in out and "rows 2184" in out
    back = load_store(tmp_path / "history", market="coinbase", symbol="BTCUSD", interval="1h")
    assert back.select(OHLCV).equals(bars.select(OHLCV))
    first = _digests(tmp_path)
    assert main(_args(tmp_path, "--base-url", srv.url)) == 0
    assert "3 already complete" in capsys.readouterr().out
    assert _digests(tmp_path) == first


def test_the_url_comes_from_tp_coinbase_url(
    srv: FakeCoinbase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TP_COINBASE_URL", srv.url)
    assert main(_args(tmp_path)) == 0
    assert srv.candle_requests()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--venue": "kraken"}, "error: unknown venue 'kraken'"),
        ({"--symbol": "DOGE-USD"}, "error: symbol DOGE-USD is not listed on coinbase"),
        ({"--from": "2024-05-01"}, "error: --from 2024-05-01 is after --to 2024-03-31"),
        ({"--from": "2024-13-01"}, "error: --from must be a date YYYY-MM-DD"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_files(
    srv: FakeCoinbase,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    message: str,
) -> None:
    args = _args(tmp_path / "data", "--base-url", srv.url)
    for flag, value in change.items():
        args[args.index(flag) + 1] = value
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err
    assert not (tmp_path / "data").exists()
    assert srv.candle_requests() == []


def test_killed_mid_run_then_rerun_gives_the_same_files(srv: FakeCoinbase, tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(_args(whole, "--base-url", srv.url)) == 0
    # every candle request after January's three now hangs: the process is SIGKILLed inside one
    srv.add_fault(200, times=3)  # January's three windows answer at once …
    srv.add_fault(200, times=None, delay_s=30.0)  # … every later one hangs
    before = len(srv.candle_requests())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "trading_pipeline.cli", *_args(cut, "--base-url", srv.url)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    manifest = cut / "history" / "manifest.json"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(srv.candle_requests()) - before < 3 + 1:
            time.sleep(0.05)
        assert manifest.exists() and proc.poll() is None
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    srv.clear_faults()
    files = json.loads(manifest.read_text())["files"]
    assert sorted(files) == ["venue/coinbase/BTC-USD/1h/2024-01"]
    assert len(_digests(cut)) == 1
    assert main(_args(cut, "--base-url", srv.url)) == 0
    assert _digests(cut / "history") == _digests(whole / "history")
