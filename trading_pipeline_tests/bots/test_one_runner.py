"""One runner per bot and mode: a second ``bot run`` for the same bot refuses with one line
(exit 2) while the first holds the lock, and the exchange never sees a client order id twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trading_pipeline.backtest.synthetic import random_walk_bars
from trading_pipeline_tests.fakes.binance import running_fake_binance

pytestmark = pytest.mark.slow

KEY, SECRET = "one-runner-key-0123456789", "one-runner-secret-9876543210"


def _env(tmp_path: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TP_")}
    return {
        **env,
        "TP_DATA_DIR": str(tmp_path / "data"),
        "TP_BINANCE_URL": url,
        "TP_BINANCE_API_KEY": KEY,
        "TP_BINANCE_API_SECRET": SECRET,
    }


@pytest.mark.parametrize("mode", ["--live", "--paper"])
def test_a_second_runner_for_one_bot_refuses(tmp_path: Path, mode: str) -> None:
    bars = random_walk_bars(400, price=30_000.0)
    with running_fake_binance(
        {"BTCUSDT": bars, "ETHUSDT": bars, "BNBUSDT": bars},
        balances={"USDT": 1_000.0},
        api_key=KEY,
        secret=SECRET,
    ) as srv:
        env = _env(tmp_path, srv.url)
        cmd = [sys.executable, "-m", "trading_pipeline.cli", "bot", "run", "--bot", "bot1", mode]
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lock = tmp_path / "data" / "bots" / "bot1" / mode.strip("-") / "runner.lock"
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and first.poll() is None:
                if lock.exists() and lock.read_text().strip() == str(first.pid):
                    break
                time.sleep(0.05)
            assert first.poll() is None, first.communicate()[1].decode()[-2000:]
            before = sorted(p.name for p in lock.parent.iterdir())
            second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            assert second.returncode == 2
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: bot1"), second.stderr
            assert f"already running (pid {first.pid}" in lines[0]
            assert sorted(p.name for p in lock.parent.iterdir()) == before
        finally:
            first.send_signal(signal.SIGTERM)
            try:
                first.wait(timeout=60)
            except subprocess.TimeoutExpired:
                first.kill()
        ids = [o.client_order_id for o in srv.orders]
        assert len(ids) == len(set(ids))
    # the lock dies with its process: a new runner may start at once
    again = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and again.poll() is None:
            if lock.read_text().strip() == str(again.pid):
                break
            time.sleep(0.05)
        assert lock.read_text().strip() == str(again.pid)
    finally:
        again.kill()
        again.wait(timeout=30)
