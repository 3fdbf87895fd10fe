"""Assignments from selector decisions: a "no champion" decision is not a choice."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trading_pipeline.bots.assignment import default_assignment
from trading_pipeline.bots.fleet import candidates_from_decisions, split_stale
from trading_pipeline.bots.spec import CASH, FLEET
from trading_pipeline.selector.decide import NO_CHAMPION


@dataclass(frozen=True)
class D:
    """The fields candidates_from_decisions reads of a selector Decision."""

    bot: str
    choice: str = CASH
    family: str = CASH
    version: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    series: str = ""
    symbols: tuple[str, ...] = ()
    decided_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    reason: str = ""


def test_no_champion_decisions_keep_the_spec_defaults() -> None:
    """Before any model exists the selector puts every bot on cash with reason "no champion":
    a first deploy must seed each bot's spec default (bot1 SMA cross, bot5 hedging), not cash."""
    decisions = {b.name: D(b.name, reason=NO_CHAMPION) for b in FLEET}
    out = {a.bot: a for a in candidates_from_decisions(decisions, {})}
    assert set(out) == {b.name for b in FLEET}
    assert out["bot1"].family == "sma_cross" and out["bot5"].family == "hedging"
    assert out["bot4"].family == CASH  # its spec default
    assert all(a.lineage["source"] == "spec-default" for a in out.values())
    # a bot that already runs something keeps it (no candidate at all)
    current = {"bot1": default_assignment("bot1").with_(params={"fast": 10, "slow": 50})}
    again = {a.bot for a in candidates_from_decisions(decisions, current)}
    assert "bot1" not in again and "bot5" in again


def test_a_model_decision_for_cash_still_moves_the_bot_to_cash() -> None:
    decisions = {"bot5": D("bot5", reason="model")}
    out = {a.bot: a for a in candidates_from_decisions(decisions, {})}
    assert out["bot5"].family == CASH and out["bot5"].lineage["source"] == "selector"
    assert out["bot1"].family == "sma_cross"  # no decision: the spec default


def test_a_decision_older_than_its_horizon_is_never_deployed_as_live() -> None:
    """``select --at 2024-06-01 --record`` records an audit decision: deploying it later as the
    live assignment is refused (one line), and the bot keeps what it has."""
    old = D("bot1", choice="sma_cross", family="sma_cross", version=1,
            decided_at=datetime(2024, 6, 1, 12, tzinfo=UTC))  # fmt: skip
    fresh, stale = split_stale({"bot1": old, "bot5": D("bot5", reason="model")})
    assert set(fresh) == {"bot5"}
    assert "2024-06-01 12:00 UTC is older than its horizon" in stale["bot1"]
    current = {"bot1": default_assignment("bot1").with_(params={"fast": 10, "slow": 50})}
    out = {a.bot: a for a in candidates_from_decisions({"bot1": old}, current)}
    assert "bot1" not in out  # keeps its assignment in force
    later = datetime(2024, 6, 1, 18, tzinfo=UTC)  # within the horizon on its own clock
    out = {a.bot: a for a in candidates_from_decisions({"bot1": old}, current, now=later)}
    assert out["bot1"].lineage["source"] == "selector"
