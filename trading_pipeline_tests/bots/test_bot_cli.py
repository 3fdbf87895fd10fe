"""``trading-pipeline bot run`` and ``paper replay``: bad input is one line, exit 2, no files."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.cli import main
from trading_pipeline_tests.fakes.bars import make_bars

from .conftest import START


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


@pytest.fixture
def env(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store_factory: Callable[[Mapping[str, pl.DataFrame]], Path],
) -> Path:
    frames = {
        s: make_bars(900, seed=i, vol=0.006, start=START)
        for i, s in enumerate(("BTCUSDT", "ETHUSDT", "BNBUSDT"))
    }
    data = store_factory(frames)
    monkeypatch.setenv("TP_DATA_DIR", str(data))
    monkeypatch.setenv("TP_BOTS_DIR", str(tmp_path / "bots"))
    for venue in ("BINANCE", "BINANCEUS", "COINBASE"):
        monkeypatch.delenv(f"TP_{venue}_API_KEY", raising=False)
        monkeypatch.delenv(f"TP_{venue}_API_SECRET", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bot", "run", "--bot", "bot9", "--paper"], "unknown bot 'bot9'"),
        (["bot", "run", "--bot", "bot1", "--live"], "live trading needs TP_BINANCE_API_KEY"),
        (["bot", "run", "--bot", "bot1", "--paper", "--live"], "choose --paper or --live"),
        (["bot", "run", "--bot", "bot4", "--live"], "live trading needs TP_BINANCEUS_API_KEY"),
        (
            [
                "bot",
                "run",
                "--bot",
                "bot1",
                "--replay-from",
                "2020-02-01",
                "--replay-to",
                "2020-01-15",
            ],
            "--replay-from 2020-02-01 is after --replay-to 2020-01-15",
        ),
        (["bot", "run", "--bot", "bot1", "--replay-from", "2020-02-01"], "are both needed"),
        (
            [
                "bot",
                "run",
                "--bot",
                "bot1",
                "--replay-from",
                "yesterday",
                "--replay-to",
                "2020-01-15",
            ],
            "must be a date",
        ),
        (["paper", "replay", "--from", "2020-02-01", "--to", "2020-01-15"], "is after --to"),
        (
            ["paper", "replay", "--from", "2020-01-10", "--to", "2020-01-20", "--capital", "-5"],
            "--capital must be positive",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_files(
    env: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(env)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert _files(env) == before


def test_live_without_keys_never_shows_a_secret(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TP_BINANCE_API_KEY", "k-visible-nowhere")
    assert main(["bot", "run", "--bot", "bot1", "--live"]) == 2
    err = capsys.readouterr().err
    assert "TP_BINANCE_API_SECRET" in err and "k-visible-nowhere" not in err


@pytest.mark.slow  # a fleet replay
def test_bot_run_replay_and_paper_replay_json(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "bot",
                "run",
                "--bot",
                "bot1",
                "--replay-from",
                "2020-01-10",
                "--replay-to",
                "2020-01-31",
            ]
        )
        == 0
    )
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["bot"] == "bot1" and line["initial"] == 300.0 and line["fills"] > 0
    assert Path(line["ledger"]).is_file()
    assert main(["paper", "replay", "--from", "2020-01-10", "--to", "2020-01-31", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["capital"] == 1000.0 and set(report["bots"]) == {
        "bot1",
        "bot2",
        "bot3",
        "bot4",
        "bot5",
    }
    # the fleet replay runs the same runner on the same bars: bot1's result is the single run's
    assert report["bots"]["bot1"]["final"] == pytest.approx(line["final"], rel=1e-12)
    target = env / "bots" / "replays" / "20200110-20200131"  # both days inclusive
    assert (target / "report.json").is_file() and (target / "equity.png").is_file()
    assert not list(target.parent.glob(".*partial"))
    assert (target / report["bots"]["bot1"]["ledger"]).is_file()  # relative to the report
    # the human report puts buy-and-hold of the same bars beside each bot's result
    assert main(["paper", "replay", "--from", "2020-01-10", "--to", "2020-01-31"]) == 0
    bot1 = next(ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("bot1"))
    bh = report["bots"]["bot1"]["buy_and_hold_return"]
    assert (
        f"buy-and-hold {bh:+7.1%}" in bot1 and f"{report['bots']['bot1']['return']:+7.1%}" in bot1
    )


def test_to_is_the_last_day_included(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--to`` names the last UTC day replayed: one day is a valid range, and the replay runs
    to the end of that day (the next midnight, exclusive)."""
    argv = ["paper", "replay", "--from", "2020-01-10", "--to", "2020-01-10", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["from"] == "2020-01-10T00:00:00+00:00"
    assert report["to"] == "2020-01-11T00:00:00+00:00"
    assert (env / "bots" / "replays" / "20200110-20200110" / "report.json").is_file()


def test_paper_replay_shows_progress_on_stderr_only(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TP_PROGRESS", "1")
    argv = ["paper", "replay", "--from", "2020-01-10", "--to", "2020-01-12", "--json"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["capital"] == 1000.0  # stdout stays one JSON document
    assert "paper replay 2020-01-10 … 2020-01-12" in err and "100%" in err
    monkeypatch.setenv("TP_PROGRESS", "0")
    assert main(argv) == 0
    assert "100%" not in capsys.readouterr().err
