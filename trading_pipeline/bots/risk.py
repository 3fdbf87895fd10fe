"""A bot's risk limits, checked at every equity mark, before any order of the step is decided.

- Daily loss: when equity falls ``daily_loss`` (default 10 %) below the UTC day's starting
  equity (the mark at 00:00 UTC, or the starting cash on the bot's first day) every position is
  closed at the next price and no new entry is made until the next UTC day.
- Drawdown guard: when equity falls ``max_drawdown`` below its peak, positions are closed and
  no new entry is made until a new assignment version arrives (someone decided again).
- Maximum position size: one entry is worth at most ``max_position_fraction`` × equity.
- Kill switch: while the file ``<bots_dir>/HALT`` exists positions are closed and nothing new
  is opened (``trading-pipeline fleet halt`` writes it).

Each trip is returned as an event (recorded in the ledger in the step's transaction, and
logged); the state it needs (blocked day, peak, halted) lives in the ledger's ``state`` table.
The loss is measured at bar closes and the exit fills at the next price; inside the bar the
runner's protective stop (bots.runner ``_protect``: a resting sell at the price that brings the
day to its limit, exit costs included) holds the limit, so a day's loss exceeds it only by what a
gap jumps (a bar opening beyond the stop fills at its open).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DAY_MS = 86_400_000
EPS = 1e-12  # 1 - 90/100 is 0.0999…98 in floats: a loss of exactly the limit trips it


def utc_day(ms: int) -> int:
    """Days since the epoch of the instant ``ms``."""
    return ms // DAY_MS


def mark_day(close_ms: int) -> int:
    """The UTC day a bar closing at ``close_ms`` belongs to (a bar closing at 00:00 ends the
    previous day; its mark is also the next day's starting equity)."""
    return (close_ms - 1) // DAY_MS


@dataclass(frozen=True)
class Limits:
    """The numbers the guard needs (an assignment's RiskLimits maps onto it)."""

    daily_loss: float = 0.10
    max_position_fraction: float = 1.0
    max_drawdown: float = 0.25

    @classmethod
    def of(cls, risk: Any) -> Limits:
        if risk is None:
            return cls()
        return cls(
            float(getattr(risk, "daily_loss", 0.10)),
            float(getattr(risk, "max_position_fraction", 1.0)),
            float(getattr(risk, "max_drawdown", 0.25)),
        )


@dataclass
class RiskDecision:
    """What the step must do: close everything, refuse entries, record these events."""

    flatten: bool = False
    block_entries: bool = False
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    max_entry_value: float = float("inf")


def read_halt(halt_path: Path) -> dict[str, Any] | None:
    """The kill switch's reason (a dict) when the HALT file exists, else None."""
    try:
        text = halt_path.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {"reason": "HALT file present (unreadable)"}
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        data = {"reason": text.strip()[:200]}
    return data if isinstance(data, dict) else {"reason": str(data)}


def evaluate(
    *,
    close_ms: int,
    equity: float,
    day_start_equity: float,
    exposure: float,
    limits: Limits,
    version: int,
    state: dict[str, Any],
    halt: dict[str, Any] | None,
) -> RiskDecision:
    """Decide this step's risk actions from the equity marked at ``close_ms``.

    ``state`` holds ``peak`` (highest equity), ``loss_day`` (the UTC day whose daily-loss limit
    tripped), ``dd_version`` (the assignment version the drawdown guard stopped) and ``halted``.
    """
    d = RiskDecision()
    day = mark_day(close_ms)
    peak = max(float(state.get("peak", equity)), equity)
    d.state["peak"] = peak

    if halt is not None:
        d.flatten = d.block_entries = True
        if not state.get("halted"):
            d.events.append(("halt", {"reason": halt, "equity": equity}))
        d.state["halted"] = True
    elif state.get("halted"):
        d.state["halted"] = False
        d.events.append(("halt_lifted", {"equity": equity}))

    loss = 1.0 - equity / day_start_equity if day_start_equity > 0 else 0.0
    if state.get("loss_day") == day:
        # orders of this step fill at close_ms: once that is the next UTC day, entries are free.
        # Until then anything still held (an exit that failed) is closed again.
        if utc_day(close_ms) == day:
            d.flatten = d.block_entries = True
    elif loss >= limits.daily_loss - EPS:
        d.flatten = d.block_entries = True
        d.state["loss_day"] = day
        d.events.append(
            (
                "daily_loss",
                {
                    "day_start_equity": day_start_equity,
                    "equity": equity,
                    "loss": loss,
                    "limit": limits.daily_loss,
                    "exposure": exposure,
                    "day": day,
                },
            )
        )

    dd = 1.0 - equity / peak if peak > 0 else 0.0
    if state.get("dd_version") == version:
        d.flatten = d.block_entries = True
    elif dd >= limits.max_drawdown - EPS:
        d.flatten = d.block_entries = True
        d.state["dd_version"] = version
        d.events.append(
            (
                "drawdown",
                {"peak": peak, "equity": equity, "drawdown": dd, "limit": limits.max_drawdown},
            )
        )
    d.max_entry_value = max(0.0, limits.max_position_fraction * equity)
    return d
