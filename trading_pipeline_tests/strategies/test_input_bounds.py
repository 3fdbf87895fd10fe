"""Refusals in the core, without a subprocess: grid ranges checked and capped before expanding,
a failing ``signals()`` named, a negative embargo refused."""

from __future__ import annotations

from typing import ClassVar

import polars as pl
import pytest

from trading_pipeline.backtest.synthetic import random_walk_bars
from trading_pipeline.discovery.splits import walk_forward
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.base import (
    MAX_GRID_COMBOS,
    Param,
    Params,
    SearchSpace,
    Signals,
    StrategyError,
    StrategyFamily,
    stepped,
)
from trading_pipeline.strategies.registry import get_family


@pytest.mark.parametrize(
    ("start", "stop", "step", "integer", "message"),
    [
        (5, float("inf"), 1, True, "finite"),
        (5, float("nan"), 1, False, "finite"),
        (5, 6, 0.001, True, "whole numbers"),
        (5.5, 9, 1, True, "whole numbers"),
        (1, 1e12, 1, True, f"limit is {MAX_GRID_COMBOS:,}"),
        (5, 6, 0, False, "positive"),
    ],
)
def test_stepped_refuses(
    start: float, stop: float, step: float, integer: bool, message: str
) -> None:
    with pytest.raises(UserInputError, match=message):
        stepped(start, stop, step, integer=integer)


def test_stepped_fractional_step_for_a_float_is_fine() -> None:
    assert stepped(0.5, 0.7, 0.1, integer=False) == [0.5, 0.6, 0.7]


def test_grid_size_is_checked_before_anything_is_expanded() -> None:
    fam = get_family("sma_cross")
    with pytest.raises(UserInputError, match="2,000,000 combinations"):
        fam.grid(fast=list(range(2000)), slow=list(range(1000)))  # values never even checked


class _Broken(StrategyFamily):
    name: ClassVar[str] = "broken_unit"
    space: ClassVar[SearchSpace] = SearchSpace(params=(Param("n", "int", 5, 2, 10, 1),))
    result: ClassVar[object] = None

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        if params.get("n") == 3:
            raise RuntimeError("kaboom\nsecond line")
        return self.result  # type: ignore[return-value]


def test_failing_signals_is_one_line_naming_the_strategy() -> None:
    bars = random_walk_bars(50)
    with pytest.raises(
        StrategyError, match=r"^strategy broken_unit: signals\(\) raised RuntimeError: kaboom$"
    ):
        _Broken().signals(bars, {"n": 3})
    with pytest.raises(StrategyError, match="returned NoneType, not Signals"):
        _Broken().signals(bars, {"n": 5})


def test_built_in_signals_pass_through_the_guard() -> None:
    fam = get_family("sma_cross")
    bars = random_walk_bars(300)
    assert len(fam.signals(bars, fam.default_params())) == bars.height


def test_negative_embargo_is_refused() -> None:
    with pytest.raises(ValueError, match="embargo"):
        walk_forward(1000, folds=2, embargo=-5)
    assert walk_forward(1000, folds=2, embargo=5)
