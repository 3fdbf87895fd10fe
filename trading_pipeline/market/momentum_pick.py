"""A momentum bot's symbols at a decision: the top N of its universe by trailing return.

:func:`momentum_pick` is causal: it reads only bars that closed at or before the decision time
(``open_time + interval <= at``), so changing any later bar cannot change the pick (a test
proves it). Each symbol's score is its close-to-close return over the last ``lookback`` closed
bars; symbols without ``lookback + 1`` closed bars are not ranked and are listed as such. Ties
break by symbol name, so the pick is deterministic. :class:`MomentumPick` is what is recorded
(in the decision's reason, the assignment's lineage and the replay report).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from trading_pipeline.market.schema import INTERVAL_MS


@dataclass(frozen=True)
class MomentumPick:
    """The picked symbols (best first), every ranked symbol's score, and what was not ranked."""

    at: datetime
    top: int
    lookback: int
    interval: str
    picked: tuple[str, ...]
    scores: Mapping[str, float] = field(default_factory=dict)
    unranked: Mapping[str, str] = field(default_factory=dict)  # symbol → why

    def describe(self) -> str:
        """One line: ``momentum top 5 of 10 at … (168 × 1h bars closed before it): SOLUSDT +12.3%, …``."""
        ranked = ", ".join(f"{s} {self.scores[s]:+.1%}" for s in self.picked)
        left = f"; not ranked: {', '.join(sorted(self.unranked))}" if self.unranked else ""
        return (
            f"momentum top {self.top} of {len(self.scores) + len(self.unranked)} at "
            f"{self.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({self.lookback} × {self.interval} "
            f"bars closed by then): {ranked or 'none ranked'}{left}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.astimezone(UTC).isoformat(),
            "top": self.top,
            "lookback_bars": self.lookback,
            "interval": self.interval,
            "picked": list(self.picked),
            "scores": {k: round(v, 6) for k, v in sorted(self.scores.items())},
            "unranked": dict(sorted(self.unranked.items())),
        }


def trailing_return(
    bars: pl.DataFrame, *, at: datetime, interval: str, lookback: int
) -> float | None:
    """Close-to-close return over the last ``lookback`` bars closed by ``at`` (None: too few)."""
    step = timedelta(milliseconds=INTERVAL_MS[interval])
    closed = bars.filter(pl.col("open_time") <= at.astimezone(UTC) - step).sort("open_time")
    if closed.height < lookback + 1:
        return None
    closes = closed.get_column("close").tail(lookback + 1)
    first, last = float(closes[0]), float(closes[-1])
    if not (math.isfinite(first) and math.isfinite(last)) or first <= 0:
        return None
    return last / first - 1.0


def momentum_pick(
    frames: Mapping[str, pl.DataFrame | None],
    *,
    at: datetime,
    interval: str,
    top: int,
    lookback: int,
) -> MomentumPick:
    """The ``top`` symbols of ``frames`` (symbol → bars, None = no history) by trailing return
    over ``lookback`` bars closed by ``at``."""
    if top < 1 or lookback < 1:
        raise ValueError(f"top and lookback must be at least 1, got {top} and {lookback}")
    scores: dict[str, float] = {}
    unranked: dict[str, str] = {}
    for symbol, df in frames.items():
        if df is None or df.height == 0:
            unranked[symbol] = "no history"
            continue
        r = trailing_return(df, at=at, interval=interval, lookback=lookback)
        if r is None:
            unranked[symbol] = f"fewer than {lookback + 1} closed bars"
        else:
            scores[symbol] = r
    ordered = sorted(scores, key=lambda s: (-scores[s], s))
    return MomentumPick(at, top, lookback, interval, tuple(ordered[:top]), scores, unranked)


__all__ = ["MomentumPick", "momentum_pick", "trailing_return"]
