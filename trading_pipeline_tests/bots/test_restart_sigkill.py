"""A runner killed with SIGKILL mid-replay and restarted ends with the ledger of an uninterrupted
run, and no client order id reaches the broker twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.bots.ledger import Ledger
from trading_pipeline_tests.fakes.bars import make_bars

from .conftest import START

pytestmark = pytest.mark.slow  # subprocesses

ARGS = [
    "bot",
    "run",
    "--bot",
    "bot1",
    "--paper",
    "--replay-from",
    "2020-01-10",
    "--replay-to",
    "2020-03-31",  # inclusive: the same bars as up to (excluding) 2020-04-01
]
WORKDIR = Path("bot1") / "replay" / "20200110-20200331"


def _cmd(data_dir: Path, bots_dir: Path) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "TP_DATA_DIR": str(data_dir), "TP_BOTS_DIR": str(bots_dir)}
    return [sys.executable, "-m", "trading_pipeline.cli", *ARGS], env


def _fills(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM fills").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_replay_then_restart_equals_an_uninterrupted_run(
    tmp_path: Path, store_factory: Callable[[Mapping[str, pl.DataFrame]], Path]
) -> None:
    frames = {
        s: make_bars(3500, seed=i, vol=0.005, start=START)
        for i, s in enumerate(("BTCUSDT", "ETHUSDT", "BNBUSDT"))
    }
    data = store_factory(frames)

    ref_bots = tmp_path / "ref"
    cmd, env = _cmd(data, ref_bots)
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    ref = Ledger(ref_bots / WORKDIR / "ledger.sqlite")
    total_fills = ref.fills().height
    assert total_fills > 100

    bots = tmp_path / "killed"
    ledger_path = bots / WORKDIR / "ledger.sqlite"
    cmd, env = _cmd(data, bots)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while _fills(ledger_path) < 20 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the runner finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _fills(ledger_path)
    assert 20 <= killed_at < total_fills  # killed mid-replay, after some fills

    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    restarted = Ledger(ledger_path)
    assert restarted.snapshot() == ref.snapshot()
    with sqlite3.connect(bots / WORKDIR / "paper.sqlite") as db:
        sent = [c for (c,) in db.execute("SELECT client_order_id FROM paper_orders")]
    assert len(sent) == len(set(sent)) == restarted.orders().height
    ids = restarted.orders()["client_order_id"].to_list()
    assert len(ids) == len(set(ids))
