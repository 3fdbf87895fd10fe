"""What a trade costs and which risk rules apply: the two value objects every backtest takes.

Costs are always on by default (0.1 % fee per side, 2 bps slippage), fills at the next bar's
open. Orders worth less than ``min_order_value`` (quote currency) are skipped, explicitly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from trading_pipeline.errors import UserInputError

DEFAULT_FEE = 0.001
DEFAULT_SLIPPAGE_BPS = 2.0
DEFAULT_MIN_ORDER_VALUE = 1.0


@dataclass(frozen=True)
class CostModel:
    """Fee per side (fraction), slippage in basis points against the trader, fill price."""

    fee: float = DEFAULT_FEE
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS
    fill: Literal["open", "close"] = "open"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fee) and 0.0 <= self.fee < 0.5):
            raise UserInputError(f"fee must be in [0, 0.5), got {self.fee}")
        if not (math.isfinite(self.slippage_bps) and 0.0 <= self.slippage_bps < 5000):
            raise UserInputError(f"slippage must be in [0, 5000) bps, got {self.slippage_bps}")
        if self.fill not in ("open", "close"):
            raise UserInputError(f"fill must be 'open' or 'close', got {self.fill!r}")

    @property
    def slippage(self) -> float:
        return self.slippage_bps / 10_000.0


def _fraction(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and 0.0 < value < 10.0):
        raise UserInputError(f"{name} must be a positive fraction, got {value}")


@dataclass(frozen=True)
class RiskRules:
    """Position size (fraction of equity), stops as fractions of the entry price, trailing
    stop as a fraction below the best price since entry, maximum holding time in bars,
    whether shorts are allowed (spot: no), and the smallest order value in quote currency."""

    size: float = 1.0
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    max_holding_bars: int | None = None
    allow_short: bool = False
    min_order_value: float = DEFAULT_MIN_ORDER_VALUE

    def __post_init__(self) -> None:
        if not (math.isfinite(self.size) and 0.0 < self.size <= 1.0):
            raise UserInputError(f"size must be in (0, 1], got {self.size}")
        _fraction("stop_loss", self.stop_loss)
        _fraction("take_profit", self.take_profit)
        _fraction("trailing_stop", self.trailing_stop)
        if self.stop_loss is not None and self.stop_loss >= 1.0:
            raise UserInputError(f"stop_loss must be below 1, got {self.stop_loss}")
        if self.trailing_stop is not None and self.trailing_stop >= 1.0:
            raise UserInputError(f"trailing_stop must be below 1, got {self.trailing_stop}")
        if self.max_holding_bars is not None and self.max_holding_bars < 1:
            raise UserInputError(f"max_holding_bars must be >= 1, got {self.max_holding_bars}")
        if not (math.isfinite(self.min_order_value) and self.min_order_value >= 0):
            raise UserInputError(f"min_order_value must be >= 0, got {self.min_order_value}")
