"""A bot's risk limits (daily loss, position size, drawdown) and the check that they are sane."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from trading_pipeline.errors import UserInputError

RISK_LIMIT_NAMES = ("daily_loss", "max_position_fraction", "max_drawdown")


@dataclass(frozen=True)
class RiskLimits:
    """A bot's limits, each a fraction: the day's loss against the UTC day's starting equity that
    closes everything until the next day, the largest single position against equity, and the
    drawdown from the peak that stops new entries until a new assignment arrives."""

    daily_loss: float = 0.10
    max_position_fraction: float = 1.0
    max_drawdown: float = 0.25

    def problems(self) -> list[str]:
        out = []
        for name, value in asdict(self).items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                out.append(f"risk limit {name} must be a number, got {value!r}")
            elif not 0.0 < float(value) <= 1.0:
                out.append(f"risk limit {name}={value} must be in (0, 1]")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RiskLimits:
        data = dict(data or {})
        unknown = sorted(set(data) - set(RISK_LIMIT_NAMES))
        if unknown:
            raise UserInputError(f"unknown risk limit {unknown[0]!r}")
        try:
            return cls(**{k: float(v) for k, v in data.items()})
        except (TypeError, ValueError):
            raise UserInputError(f"risk limits must be numbers, got {data}") from None
