"""One line per runner step for people watching ``bot run``: the bar, the signal, the orders,
the position and the equity (and any risk event), e.g.

``bot1 2024-06-01 13:00 BTCUSDT enter | BUY 0.0105 BTCUSDT filled @ 67,812.10 | pos BTCUSDT 0.0105 | equity 299.41 (cash 0.12)``
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trading_pipeline.bots.broker import OrderRequest, OrderResult


@dataclass(frozen=True)
class StepReport:
    bot: str
    bar_close_ms: int
    signals: Mapping[str, str]  # symbol -> enter / exit / hold / flat
    orders: Sequence[tuple[OrderRequest, OrderResult]]
    positions: Mapping[str, float]
    equity: float
    cash: float
    events: Sequence[str] = field(default_factory=tuple)

    def line(self) -> str:
        when = datetime.fromtimestamp(self.bar_close_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        sig = " ".join(f"{s} {v}" for s, v in sorted(self.signals.items())) or "no signal"
        parts = [f"{self.bot} {when} {sig}"]
        if self.orders:
            parts.append("; ".join(_order(q, r) for q, r in self.orders))
        held = {s: q for s, q in self.positions.items() if abs(q) > 0}
        parts.append(
            "pos " + ", ".join(f"{s} {q:.6g}" for s, q in sorted(held.items())) if held else "flat"
        )
        parts.append(f"equity {self.equity:,.2f} (cash {self.cash:,.2f})")
        if self.events:
            parts.append("risk: " + ", ".join(self.events))
        return " | ".join(parts)


def _order(req: OrderRequest, res: OrderResult) -> str:
    text = f"{req.side.upper()} {req.qty:.6g} {req.symbol} {res.status}"
    if res.avg_price:
        text += f" @ {res.avg_price:,.2f}"
    if res.reason and res.status == "rejected":
        text += f" ({res.reason})"
    return text


def signal_word(*, enters: bool, exits: bool) -> str:
    """``enter``, ``exit`` or ``-`` (no signal at this bar)."""
    return "enter" if enters else "exit" if exits else "-"


def event_names(events: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    return [name for name, _ in events]
