"""Assignments from selector decisions: a "no champion" decision is not a choice."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trading_pipeline.bots.assignment import default_assignment
from trading_pipeline.bots.fleet import candidates_from_decisions
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
    decided_at: datetime = datetime(2026, 1, 1, tzinfo=UTC)
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
