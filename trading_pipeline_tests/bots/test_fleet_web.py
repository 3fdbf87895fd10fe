"""``fleet web``: the read-only fleet page, its JSON from the ledgers, and the page as a
browser renders it (headless Chromium: the DOM after the page's script ran, and a screenshot)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from trading_pipeline.bots.assignment import default_assignment
from trading_pipeline.bots.deploy_store import DeploymentStore
from trading_pipeline.bots.fleet import fleet_view, ledger_paths
from trading_pipeline.bots.ledger import Ledger
from trading_pipeline.bots.spec import FLEET
from trading_pipeline.bots.web import fleet_snapshot, make_server
from trading_pipeline_tests.bots.test_fleet import make_ledger

pytestmark = pytest.mark.slow  # an HTTP server (and a browser)

DAY = 86_400_000
NAMES = sorted(spec.name for spec in FLEET)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def bots_dir(tmp_path: Path) -> Path:
    root = tmp_path / "bots"
    DeploymentStore(root).deploy([default_assignment(b) for b in FLEET])
    now = int(time.time() * 1000)
    today = now - now % DAY
    marks = {
        "bot1": [(now - 3 * DAY, 300.0), (now - 2 * DAY, 310.0), (today, 320.0), (now - 9, 300.0)],
        "bot2": [(now - 2 * DAY, 250.0), (today, 250.0), (now - 9, 251.0)],
    }
    for bot, m in marks.items():
        trades = [("BTCUSDT", "buy", 0.001, 40_000.0)] if bot == "bot1" else []
        make_ledger(root / bot / "paper" / "ledger.sqlite", bot, m[0][1], m, trades).close()
    return root


@pytest.fixture
def served(bots_dir: Path) -> Iterator[str]:
    server = make_server(
        lambda: fleet_snapshot(bots_dir, "paper", now_ms=int(time.time() * 1000)),
        port=0,
        refresh_s=60,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_api_numbers_come_from_the_ledgers(served: str, bots_dir: Path) -> None:
    data = httpx.get(f"{served}/api/fleet", timeout=30).json()
    assert sorted(data["bots"]) == NAMES  # every assigned bot, with or without a ledger
    ledgers = {b: Ledger(p) for b, p in ledger_paths(bots_dir, "paper").items()}
    view = fleet_view(ledgers, now_ms=data["as_of_ms"])
    for bot, v in view.bots.items():
        got = data["bots"][bot]
        assert got["equity"] == pytest.approx(v.equity) and got["pnl"] == pytest.approx(v.pnl)
        assert len(got["curve"]) == ledgers[bot].equity().height
    bot1 = data["bots"]["bot1"]
    assert bot1["day_loss_fraction"] == pytest.approx(20.0 / 320.0)  # 320 at the day's start → 300
    assert bot1["daily_loss_limit"] == pytest.approx(0.10)
    assert bot1["positions"] == {"BTCUSDT": pytest.approx(0.001)}
    assert "equity" not in data["bots"]["bot3"]  # assigned, never ran
    for ledger in ledgers.values():
        ledger.close()


def test_the_server_is_read_only(served: str, bots_dir: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in bots_dir.rglob("*") if p.is_file()}
    for method in ("POST", "PUT", "DELETE"):
        assert httpx.request(method, f"{served}/api/fleet", timeout=30).status_code == 405
    assert httpx.get(f"{served}/nope", timeout=30).status_code == 404
    page = httpx.get(served, timeout=30)
    assert (
        page.status_code == 200
        and "<script>" in page.text
        and "http" not in page.text.split("<script>")[1].split("fetch(")[0]
    )  # no external script: the page works offline
    after = {p: p.stat().st_mtime_ns for p in bots_dir.rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")
def test_the_page_renders_in_headless_chromium(
    served: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000"]  # fmt: skip
    dom = subprocess.run(
        [str(CHROMIUM), *flags, "--dump-dom", served],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout.split("<script>")[0]  # what the script rendered, not its own source
    for bot in NAMES:
        assert f'id="bot-{bot}"' in html, f"{bot} missing from the rendered page"
    assert html.count("<polyline") == 2  # bot1's and bot2's equity curves
    assert "loss 6.25% of 10% limit" in html  # bot1: -20 on a 320 start
    assert "sma_cross" in html
    shot = tmp_path / "fleet.png"
    out = subprocess.run(
        [str(CHROMIUM), *flags, "--window-size=1280,900", f"--screenshot={shot}", served],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0 and shot.stat().st_size > 10_000
    keep = Path(request.config.rootpath) / ".pytest_cache" / "fleet-web.png"
    keep.parent.mkdir(exist_ok=True)
    shutil.copy(shot, keep)
    print(f"screenshot: {keep}")
    doc = json.loads(httpx.get(f"{served}/api/fleet", timeout=30).text)
    assert doc["mode"] == "paper"


def test_fleet_web_verb_serves_and_stops_on_sigterm(bots_dir: Path) -> None:
    import signal
    import socket
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "trading_pipeline", "fleet", "web", "--bots-dir", str(bots_dir)]
    proc = subprocess.Popen([*cmd, "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert f"http://127.0.0.1:{port}/" in proc.stdout.readline()
        data = httpx.get(f"http://127.0.0.1:{port}/api/fleet", timeout=30).json()
        assert data["bots"]["bot1"]["equity"] == pytest.approx(300.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
