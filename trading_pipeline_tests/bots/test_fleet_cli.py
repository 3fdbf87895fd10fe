"""``trading-pipeline fleet``: status, allocate (dry run and real), halt/resume, risk-check."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from trading_pipeline.bots.assignment import default_assignment
from trading_pipeline.bots.deploy_store import DeploymentStore
from trading_pipeline.bots.spec import FLEET
from trading_pipeline.cli import main
from trading_pipeline_tests.bots.test_fleet import make_ledger

DAY = 86_400_000


@pytest.fixture
def bots_dir(tmp_path: Path) -> Path:
    root = tmp_path / "bots"
    DeploymentStore(root).deploy([default_assignment(b) for b in FLEET])
    now = int(time.time() * 1000)
    today = now - now % DAY
    for bot, initial, start, end in (("bot1", 300.0, 300.0, 345.0), ("bot2", 250.0, 250.0, 200.0)):
        ledger = make_ledger(
            root / bot / "paper" / "ledger.sqlite",
            bot,
            initial,
            [(now - 20 * DAY, start), (today, end), (now - 1000, end)],
            trades=[("BTCUSDT", "buy", 0.001, 40_000.0)] if bot == "bot1" else [],
        )
        ledger.close()
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_json(bots_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fleet", "status", "--json", "--bots-dir", str(bots_dir))
    assert code == 0
    data = json.loads(out)
    assert set(data["bots"]) == {"bot1", "bot2"}
    assert data["equity"] == pytest.approx(545.0)
    assert data["pnl"] == pytest.approx(545.0 - 550.0)
    assert data["exposure_by_symbol"] == {"BTCUSDT": pytest.approx(40.0)}
    assert data["assignments"]["bot1"]["family"] == "sma_cross"
    assert data["halt"] is None and data["conflicts"] == []


def test_status_table(bots_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fleet", "status", "--bots-dir", str(bots_dir))
    assert code == 0
    assert "bot1" in out and "sma_cross" in out and "BTCUSDT" in out and "running" in out


def test_status_watch_refreshes_until_its_count(
    bots_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fleet", "status", "--bots-dir", str(bots_dir), "--watch", "0.05", "--count", "3"]
    code, out, _ = run(capsys, *argv, "--json")
    views = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(views) == 3
    assert all(v["equity"] == pytest.approx(545.0) for v in views)
    code, out, _ = run(capsys, *argv)
    assert code == 0 and out.count("every 0.05 s; Ctrl-C stops") == 3 and out.count("bot1") >= 3


@pytest.mark.slow  # a subprocess
def test_status_watch_stops_on_sigterm(bots_dir: Path) -> None:
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "trading_pipeline", "fleet", "status", "--json"]
    proc = subprocess.Popen(
        [*cmd, "--bots-dir", str(bots_dir), "--watch", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first view is out: it is watching
    assert json.loads(first)["mode"] == "paper"
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()


@pytest.mark.parametrize(
    "extra",
    [["--watch", "0"], ["--watch", "-1"], ["--watch", "nan"], ["--count", "2"],
     ["--watch", "1", "--count", "0"]],
)  # fmt: skip
def test_bad_watch_options_fail_in_one_line(
    bots_dir: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    code, out, err = run(capsys, "fleet", "status", "--bots-dir", str(bots_dir), *extra)
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1 and out == ""


def test_allocate_dry_run_changes_nothing_then_deploys(
    bots_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (bots_dir / "bot1" / "assignment.json").read_bytes()
    code, out, _ = run(
        capsys, "fleet", "allocate", "--dry-run", "--json", "--bots-dir", str(bots_dir)
    )
    assert code == 0
    data = json.loads(out)
    assert data["dry_run"] is True and data["deployed"] is None
    assert data["returns"]["bot1"] == pytest.approx(0.15)
    assert data["returns"]["bot2"] == pytest.approx(-0.2) and data["returns"]["bot3"] is None
    assert data["fractions"]["bot1"] > 0.30 > 0.25 > data["fractions"]["bot2"]
    assert data["total"] == pytest.approx(1.0)
    assert (bots_dir / "bot1" / "assignment.json").read_bytes() == before
    code, out, _ = run(capsys, "fleet", "allocate", "--bots-dir", str(bots_dir))
    assert code == 0 and "deployed 5" in out and "bot1: 30.0% →" in out
    store = DeploymentStore(bots_dir)
    assert store.current("bot1").capital_fraction == pytest.approx(data["fractions"]["bot1"])  # type: ignore[union-attr]


def test_halt_and_resume(bots_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "fleet", "halt", "--reason", "exchange incident", "--bots-dir", str(bots_dir)
    )
    assert code == 0 and "halted" in out
    content = json.loads((bots_dir / "HALT").read_text())
    assert content["reason"] == "exchange incident" and content["by"] == "operator"
    _, out, _ = run(capsys, "fleet", "status", "--json", "--bots-dir", str(bots_dir))
    assert json.loads(out)["halt"]["reason"] == "exchange incident"
    code, out, _ = run(capsys, "fleet", "resume", "--bots-dir", str(bots_dir))
    assert code == 0 and out.strip() == "resumed" and not (bots_dir / "HALT").exists()
    _, out, _ = run(capsys, "fleet", "resume", "--bots-dir", str(bots_dir))
    assert out.strip() == "not halted"


def test_bad_input_exits_2_and_changes_nothing(
    bots_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "fleet", "halt", "--reason", "  ", "--bots-dir", str(bots_dir))
    assert code == 2 and err.startswith("error:") and not (bots_dir / "HALT").exists()
    code, _, err = run(capsys, "fleet", "status", "--mode", "demo", "--bots-dir", str(bots_dir))
    assert code == 2 and "mode must be one of" in err
    code, _, err = run(capsys, "fleet", "allocate", "--band", "2", "--bots-dir", str(bots_dir))
    assert code == 2 and "band" in err
    assert DeploymentStore(bots_dir).current("bot1").version == 1  # type: ignore[union-attr]


def test_risk_check_halts_on_the_fleet_daily_loss(
    bots_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # today: bot1 345 → 345, bot2 200 → 200: no loss since midnight
    code, out, _ = run(capsys, "fleet", "risk-check", "--json", "--bots-dir", str(bots_dir))
    assert code == 0 and json.loads(out)["halted_now"] is False
    # a tighter limit than any loss cannot trip either; a crash does
    now = int(time.time() * 1000)
    ledger = make_ledger(
        bots_dir / "bot2" / "paper" / "ledger.sqlite", "bot2", 250.0, [(now - 500, 50.0)]
    )
    ledger.close()
    code, out, _ = run(capsys, "fleet", "risk-check", "--json", "--bots-dir", str(bots_dir))
    data = json.loads(out)
    assert data["halted_now"] is True and data["loss"] == pytest.approx(1 - 395.0 / 545.0)
    assert data["halt"]["by"] == "fleet-risk"
