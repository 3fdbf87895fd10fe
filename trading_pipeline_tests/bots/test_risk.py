"""Risk limits that hold: daily loss (unit and on the real May 2022 crash), drawdown, HALT,
maximum position size."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from trading_pipeline.bots.assignment import Assignment, RiskLimits
from trading_pipeline.bots.candles import FrameCandles
from trading_pipeline.bots.clock import ReplayClock, to_ms
from trading_pipeline.bots.ledger import Ledger
from trading_pipeline.bots.paper import PaperBroker
from trading_pipeline.bots.risk import DAY_MS, Limits, RiskDecision, evaluate, mark_day, read_halt
from trading_pipeline.bots.runner import BotRunner

DAY0 = 19_000 * DAY_MS
H = 3_600_000

pytestmark = pytest.mark.usefixtures("permissive_fleet")


def _eval(
    close_ms: int,
    equity: float,
    state: dict[str, Any],
    *,
    start: float = 100.0,
    limits: Limits | None = None,
    version: int = 1,
    halt: dict[str, Any] | None = None,
) -> RiskDecision:
    return evaluate(
        close_ms=close_ms,
        equity=equity,
        day_start_equity=start,
        exposure=equity,
        limits=limits or Limits(),
        version=version,
        state=state,
        halt=halt,
    )


def test_daily_loss_trips_once_blocks_the_rest_of_the_day_and_frees_the_next() -> None:
    ok = _eval(DAY0 + 5 * H, 90.01, {})
    assert not ok.flatten and not ok.block_entries and ok.events == []
    hit = _eval(DAY0 + 6 * H, 90.0, {})
    assert hit.flatten and hit.block_entries
    assert [k for k, _ in hit.events] == ["daily_loss"]
    state = hit.state
    later = _eval(DAY0 + 9 * H, 85.0, state)
    assert later.block_entries and later.flatten and later.events == []  # flat already: no-op
    # the bar closing at midnight is the day's last mark; its orders fill on the next day
    midnight = _eval(DAY0 + DAY_MS, 85.0, state)
    assert not midnight.block_entries
    assert mark_day(DAY0 + DAY_MS) == mark_day(DAY0 + 1)
    nxt = _eval(DAY0 + DAY_MS + H, 85.0, state, start=85.0)
    assert not nxt.block_entries and nxt.events == []


def test_drawdown_guard_holds_until_a_new_assignment_version() -> None:
    s1 = _eval(DAY0 + H, 120.0, {}, start=120.0)
    s2 = _eval(DAY0 + DAY_MS + H, 89.0, {**s1.state}, start=95.0)
    assert s2.flatten and [k for k, _ in s2.events] == ["drawdown"]
    held = _eval(DAY0 + 2 * DAY_MS + H, 95.0, {**s1.state, **s2.state}, start=95.0)
    assert held.block_entries and held.flatten
    fresh = _eval(DAY0 + 2 * DAY_MS + H, 95.0, {**s1.state, **s2.state}, start=95.0, version=2)
    assert not fresh.block_entries


def test_halt_flattens_records_once_and_lifts(tmp_path: Path) -> None:
    halt = tmp_path / "HALT"
    assert read_halt(halt) is None
    halt.write_text(json.dumps({"reason": "operator"}))
    reason = read_halt(halt)
    assert reason == {"reason": "operator"}
    a = _eval(DAY0 + H, 100.0, {}, halt=reason)
    assert a.flatten and a.block_entries and [k for k, _ in a.events] == ["halt"]
    b = _eval(DAY0 + 2 * H, 100.0, {**a.state}, halt=reason)
    assert b.flatten and b.events == []
    c = _eval(DAY0 + 3 * H, 100.0, {**a.state}, halt=None)
    assert not c.block_entries and [k for k, _ in c.events] == ["halt_lifted"]
    assert _eval(DAY0, 200.0, {}, limits=Limits(max_position_fraction=0.25)).max_entry_value == 50.0


def _run(bars: pl.DataFrame, tmp_path: Path, a: Assignment, halt: Path | None = None) -> Ledger:
    start, end = datetime(2020, 1, 10, tzinfo=UTC), datetime(2020, 2, 10, tzinfo=UTC)
    candles = FrameCandles({"BTCUSDT": bars}, end_ms=to_ms(end))
    clock = ReplayClock(to_ms(start), to_ms(end))
    broker = PaperBroker(candles, clock, interval="1h", starting_balances={"USDT": 300.0})
    ledger = Ledger(tmp_path / "ledger.sqlite", durable=False)
    BotRunner(
        "bot1",
        ledger=ledger,
        broker=broker,
        candles=candles,
        clock=clock,
        assignments=lambda: a,
        initial_cash=300.0,
        halt_path=halt,
    ).run()
    return ledger


def test_max_position_size_caps_every_entry(bars: pl.DataFrame, tmp_path: Path) -> None:
    a = Assignment(
        "bot1",
        1,
        ("BTCUSDT",),
        "1h",
        "buy_and_hold",
        1,
        {},
        0.3,
        RiskLimits(max_position_fraction=0.4),
    )
    ledger = _run(bars, tmp_path, a)
    buys = ledger.fills().filter(pl.col("side") == "buy")
    assert buys.height == 1 and -float(buys["cash_delta"][0]) == pytest.approx(0.4 * 300.0)
    assert ledger.cash() == pytest.approx(180.0)


def test_the_halt_file_closes_positions_and_stops_entries(
    bars: pl.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    halt = tmp_path / "HALT"
    halt.write_text(json.dumps({"reason": "fleet halt"}))
    a = Assignment("bot1", 1, ("BTCUSDT",), "1h", "buy_and_hold", 1, {}, 0.3, RiskLimits())
    with caplog.at_level(logging.WARNING, logger="trading_pipeline.bots.runner"):
        ledger = _run(bars, tmp_path, a, halt)
    assert ledger.fills().height == 0 and ledger.positions() == {}
    ev = ledger.risk_events()
    assert ev["kind"].to_list() == ["halt"] and "fleet halt" in ev["detail"][0]
    assert any("risk event halt" in r.getMessage() for r in caplog.records)
