"""The fleet: a view over real ledgers, the opposite-positions rule, allocation within bounds,
and the fleet daily-loss halt."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_pipeline.bots.assignment import default_assignment, opposite_assignments
from trading_pipeline.bots.broker import OrderRequest, OrderResult
from trading_pipeline.bots.deploy_store import DeploymentStore
from trading_pipeline.bots.fleet import (
    RISK_HALT_BY,
    AllocationRules,
    allocate,
    check_fleet_loss,
    fleet_view,
    opposite_positions,
    plan_allocation,
    recent_return,
    run_allocation,
)
from trading_pipeline.bots.ledger import Ledger, StepRecord
from trading_pipeline.bots.spec import FLEET, default_split
from trading_pipeline.errors import UserInputError

DAY = 86_400_000
T0 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)  # a UTC midnight


def make_ledger(
    path: Path,
    bot: str,
    initial: float,
    marks: Sequence[tuple[int, float]],
    trades: Sequence[tuple[str, str, float, float]] = (),
) -> Ledger:
    """A ledger booked through the Ledger's own API: starting cash, fills, equity marks."""
    ledger = Ledger(path)
    ledger.open_account(bot, initial)
    for i, (symbol, side, qty, price) in enumerate(trades):
        cid = f"{bot}-{i}"
        req = OrderRequest(cid, symbol, side, qty)  # type: ignore[arg-type]
        ledger.record_intents([req], version=1, bar_ms=T0 + i, sent_ms=T0 + i)
        res = OrderResult(cid, "filled", qty, price, 0.0, "USDT", f"x{i}", "")
        ledger.record_step(StepRecord(T0 + i, 1, "fp", results=[(req, res)], fill_ms=T0 + i))
    for ms, eq in marks:
        ledger.record_step(StepRecord(ms, 1, "fp", equity_ms=ms, equity=(eq, eq, 0.0)))
    return ledger


def fleet_ledgers(tmp_path: Path, marks: dict[str, list[tuple[int, float]]]) -> dict[str, Ledger]:
    split = default_split()
    return {
        b: make_ledger(tmp_path / b / "paper" / "ledger.sqlite", b, 1000.0 * split[b], m)
        for b, m in marks.items()
    }


def test_view_sums_positions_exposure_and_pnl(tmp_path: Path) -> None:
    a = make_ledger(
        tmp_path / "a.sqlite",
        "bot1",
        300.0,
        [(T0 + 3_600_000, 305.0), (T0 + DAY + 3_600_000, 310.0)],
        trades=[("BTCUSDT", "buy", 0.002, 50_000.0), ("ETHUSDT", "buy", 0.05, 2_000.0)],
    )
    b = make_ledger(
        tmp_path / "b.sqlite",
        "bot3",
        250.0,
        [(T0 + DAY + 3_600_000, 240.0)],
        trades=[("BTCUSDT", "buy", 0.001, 40_000.0)],
    )
    now = T0 + DAY + 7_200_000
    view = fleet_view({"bot1": a, "bot3": b}, now_ms=now)
    assert view.bots["bot1"].positions == {"BTCUSDT": 0.002, "ETHUSDT": 0.05}
    assert view.bots["bot1"].cash == pytest.approx(300.0 - 100.0 - 100.0)
    assert view.exposure_by_symbol == {"BTCUSDT": pytest.approx(140.0), "ETHUSDT": 100.0}
    assert view.gross_exposure == pytest.approx(240.0) and not view.priced
    assert view.equity == pytest.approx(310.0 + 240.0)
    assert view.pnl == pytest.approx(550.0 - 550.0)
    # bot1's day started at its last mark before midnight (305); bot3 had none: starting cash
    assert view.day_start_equity == pytest.approx(305.0 + 250.0)
    priced = fleet_view(
        {"bot1": a, "bot3": b}, now_ms=now, prices={"BTCUSDT": 60_000.0, "ETHUSDT": 1_000.0}
    )
    assert priced.exposure_by_symbol["BTCUSDT"] == pytest.approx(0.003 * 60_000.0)
    assert priced.bots["bot1"].equity == pytest.approx(100.0 + 120.0 + 50.0)
    assert priced.to_dict()["exposure_valued_at"] == "prices"
    assert view.conflicts == []


def test_opposite_positions_across_bots(tmp_path: Path) -> None:
    assert opposite_positions({"bot1": {"BTCUSDT": 1.0}, "bot5": {"BTCUSDT": 0.5}}) == []
    conflicts = opposite_positions(
        {"bot1": {"BTCUSDT": 1.0, "ETHUSDT": 2.0}, "bot5": {"BTCUSDT": -0.5}, "bot3": {}}
    )
    assert [c.symbol for c in conflicts] == ["BTCUSDT"]
    assert conflicts[0].long == {"bot1": 1.0} and conflicts[0].short == {"bot5": -0.5}
    # a ledger that sold what it did not hold is short: the view reports the conflict
    long_ = make_ledger(
        tmp_path / "l.sqlite", "bot1", 300.0, [], trades=[("BTCUSDT", "buy", 0.001, 30_000.0)]
    )
    short = make_ledger(
        tmp_path / "s.sqlite", "bot5", 50.0, [], trades=[("BTCUSDT", "sell", 0.001, 30_000.0)]
    )
    view = fleet_view({"bot1": long_, "bot5": short}, now_ms=T0 + DAY)
    assert [c.describe() for c in view.conflicts] == ["BTCUSDT: long in bot1, short in bot5"]


def test_assignment_level_opposite_refusal() -> None:
    bot1 = default_assignment("bot1")
    shorting = default_assignment("bot5").with_(family="hedging", params={"allow_short": True})
    assert opposite_assignments(bot1, {"bot5": default_assignment("bot5")}) is None
    why = opposite_assignments(shorting, {"bot1": bot1})
    assert why is not None and "BTCUSDT opposite bot1" in why
    assert opposite_assignments(bot1, {"bot5": shorting}) is not None
    other_symbols = shorting.with_(symbols=("DOGEUSDT",))
    assert opposite_assignments(other_symbols, {"bot1": bot1}) is None


def test_allocation_moves_toward_performance_within_bounds() -> None:
    plan = default_split()
    flat = allocate(plan, {})
    assert flat == pytest.approx(plan)
    out = allocate(plan, {"bot1": 0.5, "bot2": -0.3, "bot3": 0.0})
    assert out["bot1"] == pytest.approx(0.30 * 1.5)  # capped at +50%
    assert out["bot2"] < 0.25 and out["bot2"] >= 0.25 * 0.5 - 1e-12
    assert sum(out.values()) == pytest.approx(1.0) and sum(out.values()) <= 1.0 + 1e-12
    narrow = allocate(plan, {"bot1": 0.5}, AllocationRules(band=0.1))
    assert narrow["bot1"] == pytest.approx(0.33)
    with pytest.raises(UserInputError, match="over 100%"):
        allocate({"bot1": 0.7, "bot2": 0.5}, {})
    with pytest.raises(UserInputError, match="band"):
        AllocationRules(band=1.5)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-0.95, 3.0, allow_nan=False), min_size=5, max_size=5),
    st.floats(0.0, 0.9),
    st.floats(0.0, 10.0),
)
def test_allocation_bounds_hold_for_any_returns(
    rets: list[float], band: float, tilt: float
) -> None:
    plan = default_split()
    out = allocate(plan, dict(zip(plan, rets, strict=True)), AllocationRules(band=band, tilt=tilt))
    assert sum(out.values()) <= 1.0 + 1e-9
    assert sum(out.values()) == pytest.approx(sum(plan.values()), abs=1e-9)
    for b, f in out.items():
        assert plan[b] * (1 - band) - 1e-9 <= f <= plan[b] * (1 + band) + 1e-9


def test_recent_return_uses_the_mark_before_the_window(tmp_path: Path) -> None:
    led = make_ledger(
        tmp_path / "r.sqlite",
        "bot1",
        300.0,
        [(T0, 300.0), (T0 + 10 * DAY, 330.0), (T0 + 40 * DAY, 363.0)],
    )
    assert recent_return(led, now_ms=T0 + 40 * DAY, days=30) == pytest.approx(0.10)
    assert recent_return(led, now_ms=T0 + 40 * DAY, days=60) == pytest.approx(0.21)
    empty = make_ledger(tmp_path / "e.sqlite", "bot2", 250.0, [(T0, 250.0)])
    assert recent_return(empty, now_ms=T0 + DAY, days=30) is None


def test_allocation_deploys_new_fractions_through_the_store(tmp_path: Path) -> None:
    store = DeploymentStore(tmp_path / "bots")
    store.deploy([default_assignment(b) for b in FLEET])
    now = T0 + 30 * DAY
    ledgers = fleet_ledgers(
        tmp_path,
        {
            "bot1": [(T0, 300.0), (now, 360.0)],  # +20%
            "bot2": [(T0, 250.0), (now, 225.0)],  # -10%
        },
    )
    dry = run_allocation(store, ledgers, now_ms=now, dry_run=True)
    assert dry.report is None and store.current("bot1").version == 1  # type: ignore[union-attr]
    result = run_allocation(store, ledgers, now_ms=now)
    assert result.report is not None and result.report.ok
    f = {b: a.capital_fraction for b, a in store.all_current().items()}
    assert f["bot1"] > 0.30 and f["bot2"] < 0.25
    assert sum(f.values()) == pytest.approx(1.0)
    bot1 = store.current("bot1")
    assert bot1 is not None and bot1.version == 2
    assert bot1.lineage["allocation"]["return"] == pytest.approx(0.2)
    assert bot1.family == "sma_cross"  # only the fraction changed
    again = plan_allocation(store, ledgers, now_ms=now)
    assert store.deploy(again.candidates).deployed == []  # same fractions: unchanged


def test_fleet_daily_loss_halts_and_lifts_next_day(tmp_path: Path) -> None:
    store = DeploymentStore(tmp_path / "bots")
    day1 = T0 + DAY
    ledgers = fleet_ledgers(
        tmp_path,
        {
            "bot1": [(day1, 300.0), (day1 + 3_600_000, 200.0)],
            "bot2": [(day1, 250.0), (day1 + 3_600_000, 240.0)],
            "bot3": [(day1, 250.0), (day1 + 3_600_000, 240.0)],
        },
    )
    risk = check_fleet_loss(store, ledgers, now_ms=day1 + 3_600_000)
    assert risk.loss == pytest.approx(1 - 680.0 / 800.0) and risk.tripped and risk.halted_now
    halt = store.halted()
    assert halt is not None and halt["by"] == RISK_HALT_BY
    assert halt["reason"].startswith("fleet daily loss 15.00% reached the 10% limit")
    assert halt["day_start_equity"] == pytest.approx(800.0)
    assert halt["until"] == "2026-03-03T00:00:00+00:00"
    assert not check_fleet_loss(store, ledgers, now_ms=day1 + 3_700_000).halted_now
    lifted = check_fleet_loss(store, ledgers, now_ms=day1 + DAY + 60_000)
    assert lifted.lifted_now and store.halted() is None
    # a person's halt is never lifted by the check
    store.halt("maintenance", by="operator")
    check_fleet_loss(store, ledgers, now_ms=day1 + 5 * DAY)
    assert store.halted() is not None and store.halted()["reason"] == "maintenance"  # type: ignore[index]


def test_loss_under_the_limit_does_not_halt(tmp_path: Path) -> None:
    store = DeploymentStore(tmp_path / "bots")
    day1 = T0 + DAY
    ledgers = fleet_ledgers(
        tmp_path,
        {
            "bot1": [(day1, 300.0), (day1 + 3_600_000, 280.0)],
            "bot2": [(day1, 250.0), (day1 + 3_600_000, 250.0)],
        },
    )
    risk = check_fleet_loss(store, ledgers, now_ms=day1 + 3_600_000)
    assert risk.loss == pytest.approx(20.0 / 550.0) and not risk.tripped
    assert store.halted() is None
    with pytest.raises(UserInputError):
        check_fleet_loss(store, ledgers, now_ms=day1, limit=0.0)


def test_each_runner_enforces_the_fleet_limit_from_the_shared_ledgers(tmp_path: Path) -> None:
    """A live or paper runner's fleet_halt reads every bot's ledger under the bots dir: when the
    fleet is 10% down on the day it writes the HALT file every runner obeys (no sensor needed)."""
    from trading_pipeline.bots.fleet import shared_fleet_halt

    bots = tmp_path / "bots"
    day1 = T0 + DAY
    marks = {
        "bot1": [(day1, 300.0), (day1 + 3_600_000, 200.0)],
        "bot2": [(day1, 250.0), (day1 + 3_600_000, 240.0)],
    }
    for ledger in fleet_ledgers(bots, marks).values():
        ledger.close()
    store = DeploymentStore(bots)
    halt = shared_fleet_halt(store, bots, "paper")
    reason = halt(day1 + 3_600_000)
    assert reason is not None and reason["by"] == RISK_HALT_BY
    assert (bots / "HALT").is_file() and store.halted() is not None
    assert halt(day1 + DAY + 60_000) is None and store.halted() is None  # lifted the next day
