"""The fleet replay: $1,000 split by the spec, the same runner per bot, a report on disk."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.bots.assignment import Assignment, RiskLimits
from trading_pipeline.bots.ledger import Ledger
from trading_pipeline.bots.replay import replay_fleet, store_loader
from trading_pipeline.bots.spec import default_split
from trading_pipeline_tests.fakes.bars import make_bars

from .conftest import START

pytestmark = [  # whole-fleet and multi-bot replays over thousands of bars
    pytest.mark.slow,
    pytest.mark.usefixtures("permissive_fleet"),  # bot5 on buy_and_hold
]

FROM, TO = datetime(2020, 1, 10, tzinfo=UTC), datetime(2020, 2, 20, tzinfo=UTC)


@pytest.fixture
def data(store_factory: Callable[[Mapping[str, pl.DataFrame]], Path]) -> Path:
    frames = {
        s: make_bars(1500, seed=i, vol=0.006, start=START)
        for i, s in enumerate(("BTCUSDT", "ETHUSDT", "BNBUSDT"))
    }
    return store_factory(frames)


def test_fleet_replay_splits_capital_runs_each_bot_and_writes_a_report(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    load = store_loader(data / "history", start=FROM, end=TO)
    bot5 = Assignment(
        "bot5", 3, ("BTCUSDT", "ETHUSDT"), "1h", "buy_and_hold", 1, {}, 0.05, RiskLimits()
    )
    r = replay_fleet(start=FROM, end=TO, out_dir=out, load=load, assignments={"bot5": bot5})
    assert {b: x.initial for b, x in r.bots.items()} == pytest.approx(
        {b: 1000 * f for b, f in default_split().items()}
    )
    assert r.final == pytest.approx(sum(b.final for b in r.bots.values()))
    bot1 = r.bots["bot1"]
    assert bot1.family == "sma_cross" and bot1.fills.height > 10  # spec default on its three coins
    assert r.bots["bot2"].note.startswith("no history")  # 5-minute coins absent: held cash
    assert r.bots["bot2"].final == 250.0
    # bot5 took the given assignment: bought both coins at the first open and held them until
    # a risk limit (if any) closed them
    b5 = r.bots["bot5"]
    assert b5.fills["side"].to_list()[:2] == ["buy", "buy"]
    assert b5.fills["client_order_id"][0].startswith("bot5-3-")
    sells = b5.fills.filter(pl.col("side") == "sell")
    assert sells.height == 0 or b5.risk_events.height > 0
    assert b5.buy_and_hold is not None
    # each bot's ledger agrees with itself: the last mark = cash + positions at the last close
    assert bot1.ledger_path is not None
    led = Ledger(bot1.ledger_path)
    last = led.equity().row(-1, named=True)
    assert last["equity"] == pytest.approx(last["cash"] + last["exposure"])
    report = json.loads((out / "report.json").read_text())
    assert report["capital"] == 1000.0 and report["final"] == pytest.approx(r.final)
    assert report["bots"]["bot1"]["ledger"] == "bot1/ledger.sqlite"
    assert len(report["bots"]["bot1"]["fills"]) == bot1.fills.height
    assert report["bots"]["bot1"]["buy_and_hold_return"] is not None
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_replay_is_deterministic(data: Path, tmp_path: Path) -> None:
    load = store_loader(data / "history", start=FROM, end=TO)
    a = replay_fleet(start=FROM, end=TO, out_dir=tmp_path / "a", load=load)
    b = replay_fleet(start=FROM, end=TO, out_dir=tmp_path / "b", load=load)
    assert (tmp_path / "a" / "report.json").read_text() == (
        tmp_path / "b" / "report.json"
    ).read_text()
    pa, pb = a.bots["bot1"].ledger_path, b.bots["bot1"].ledger_path
    assert pa is not None and pb is not None
    assert Ledger(pa).snapshot() == Ledger(pb).snapshot()
