"""``bot run --paper`` on the wall clock: wired to the venues' URLs from settings, it starts,
reconciles, writes its ledger and stops cleanly on SIGTERM (no step is awaited: bars close
hourly). bot4 gets one paper account per venue behind the routing broker."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trading_pipeline_tests.fakes.binance import running_fake_binance
from trading_pipeline_tests.fakes.coinbase import running_fake_coinbase

pytestmark = pytest.mark.slow  # subprocesses


def _run_until_ledger(bot: str, env: dict[str, str], ledger: Path) -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trading_pipeline.cli", "bot", "run", "--bot", bot, "--paper"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not ledger.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # past start-up: reconcile and funding are done before the first sleep
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out


@pytest.mark.parametrize("bot", ["bot1", "bot4"])
def test_paper_bot_starts_on_local_venues_and_stops_on_sigterm(bot: str, tmp_path: Path) -> None:
    with running_fake_binance() as binance, running_fake_coinbase() as coinbase:
        env = {
            **os.environ,
            "TP_DATA_DIR": str(tmp_path / "data"),
            "TP_BOTS_DIR": str(tmp_path / "bots"),
            "TP_BINANCE_URL": binance.url,
            "TP_BINANCEUS_URL": binance.url,
            "TP_COINBASE_URL": coinbase.url,
        }
        ledger = tmp_path / "bots" / bot / "paper" / "ledger.sqlite"
        code, out = _run_until_ledger(bot, env, ledger)
    assert code == 0, out
    assert ledger.exists()
    with sqlite3.connect(ledger) as db:  # a real ledger, nothing traded before the first close
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        assert {"orders", "fills"} <= tables
        assert db.execute("select count(*) from orders").fetchone() == (0,)
    accounts = sorted(p.name for p in ledger.parent.glob("paper*.sqlite"))
    expected = (
        ["paper-binanceus.sqlite", "paper-coinbase.sqlite"] if bot == "bot4" else ["paper.sqlite"]
    )
    assert accounts == expected
