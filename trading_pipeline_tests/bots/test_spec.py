"""The fleet description: the plan's split, known families, one-line errors."""

from __future__ import annotations

import math

import pytest

from trading_pipeline.bots.spec import CASH, FLEET, bot_spec, default_split
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import INTERVAL_MS
from trading_pipeline.strategies.registry import FAMILIES


def test_split_is_the_plans_30_25_25_15_5() -> None:
    split = default_split()
    assert [round(split[b], 2) for b in ("bot1", "bot2", "bot3", "bot4", "bot5")] == [
        0.30,
        0.25,
        0.25,
        0.15,
        0.05,
    ]
    assert math.isclose(sum(split.values()), 1.0)


def test_every_bot_has_a_known_interval_and_cash_is_always_allowed() -> None:
    for bot in FLEET:
        assert bot.interval in INTERVAL_MS
        assert bot.allows(CASH)
        assert bot.default_family == CASH or bot.default_family in bot.families


def test_families_of_the_first_three_bots_are_registered() -> None:
    known = set(FAMILIES)
    for name in ("bot1", "bot2", "bot3"):
        missing = set(bot_spec(name).families) - known
        assert not missing, f"{name} names unregistered families {missing}"


def test_unknown_bot_is_a_one_line_error() -> None:
    with pytest.raises(UserInputError, match="unknown bot 'bot9'"):
        bot_spec("bot9")
