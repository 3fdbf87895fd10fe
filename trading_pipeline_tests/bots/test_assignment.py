"""Assignments: JSON round trip, fingerprint, defaults from the spec, and every refusal."""

from __future__ import annotations

import pytest

from trading_pipeline.bots.assignment import (
    Assignment,
    RiskLimits,
    default_assignment,
    validate_assignment,
)
from trading_pipeline.bots.spec import FLEET
from trading_pipeline.errors import UserInputError


def sma(**changes: object) -> Assignment:
    a = Assignment(
        bot="bot1",
        version=0,
        symbols=("BTCUSDT", "ETHUSDT"),
        interval="1h",
        family="sma_cross",
        family_version=1,
        params={"fast": 10, "slow": 50},
        capital_fraction=0.3,
        risk=RiskLimits(),
        lineage={"model_version": 3, "run_id": "abc"},
        created_at="2026-01-01T00:00:00+00:00",
    )
    return a.with_(**changes)


def test_json_round_trip_keeps_everything() -> None:
    a = sma(risk=RiskLimits(daily_loss=0.05, max_position_fraction=0.5, max_drawdown=0.2))
    b = Assignment.from_json(a.to_json())
    assert b == a
    assert b.fingerprint == a.fingerprint


def test_fingerprint_covers_what_the_bot_runs_not_lineage_or_time() -> None:
    a = sma()
    assert sma(lineage={"model_version": 4}, created_at="x", version=9).fingerprint == a.fingerprint
    for changed in (
        sma(params={"fast": 11, "slow": 50}),
        sma(symbols=("BTCUSDT",)),
        sma(interval="4h"),
        sma(capital_fraction=0.31),
        sma(risk=RiskLimits(daily_loss=0.05)),
        sma(family_version=2),
    ):
        assert changed.fingerprint != a.fingerprint


def test_valid_assignment_gets_defaults_filled() -> None:
    out = validate_assignment(sma(params={"fast": "12", "slow": 40}), others={})
    assert out.params["fast"] == 12 and out.params["slow"] == 40
    assert "trend" in out.params  # defaults filled from the search space


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bot": "bot9"}, "unknown bot 'bot9'"),
        ({"family": "macd", "params": {}}, "not allowed for this bot"),
        ({"params": {"fast": 1, "slow": 50}}, "outside its range"),
        ({"params": {"fast": 60, "slow": 50}}, "constraint fast < slow"),
        ({"params": {"speed": 3}}, "unknown parameter 'speed'"),
        ({"family_version": 7}, "v7 is not available"),
        ({"symbols": ("DOGEUSDT",)}, "DOGEUSDT is not in the bot's spec"),
        ({"symbols": ("BTCUSDT", "BTCUSDT")}, "duplicate symbols"),
        ({"symbols": ()}, "at least one symbol"),
        ({"interval": "7m"}, "unknown bar interval"),
        ({"capital_fraction": 1.5}, "capital fraction"),
        ({"capital_fraction": float("nan")}, "capital fraction"),
        ({"risk": RiskLimits(daily_loss=0.0)}, "daily_loss=0.0 must be in"),
        ({"risk": RiskLimits(max_drawdown=2.0)}, "max_drawdown=2.0"),
        (
            {"family": "cash", "family_version": 0, "params": {"fast": 3}},
            "cash takes no parameters",
        ),
    ],
)
def test_refusals_name_the_problem(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        validate_assignment(sma(**changes), others={})


def test_family_allowed_by_spec_but_not_registered_is_refused() -> None:
    a = default_assignment("bot4").with_(family="not_a_family", family_version=1)
    with pytest.raises(UserInputError):
        validate_assignment(a, others={})


def test_fractions_over_100_percent_are_refused() -> None:
    others = {b.name: default_assignment(b) for b in FLEET}
    validate_assignment(sma(capital_fraction=0.30), others=others)  # 100% exactly: fine
    with pytest.raises(UserInputError, match=r"total 101\.0% \(over 100%\)"):
        validate_assignment(sma(capital_fraction=0.31), others=others)


def test_cash_is_always_allowed_and_defaults_follow_the_spec() -> None:
    defaults = {b.name: default_assignment(b) for b in FLEET}
    assert defaults["bot1"].family == "sma_cross" and defaults["bot1"].family_version == 1
    assert defaults["bot4"].family == "cash" and defaults["bot4"].params == {}
    assert sum(a.capital_fraction for a in defaults.values()) == pytest.approx(1.0)
    for a in defaults.values():
        assert validate_assignment(a, others=defaults).fingerprint == a.fingerprint
    cash = sma(family="cash", family_version=0, params={})
    assert validate_assignment(cash, others={}).is_cash


def test_bad_json_is_a_user_error() -> None:
    with pytest.raises(UserInputError, match="not JSON"):
        Assignment.from_json("{")
    with pytest.raises(UserInputError, match="not an assignment"):
        Assignment.from_json('{"bot": "bot1"}')
    with pytest.raises(UserInputError, match="unknown risk limit"):
        RiskLimits.from_dict({"leverage": 3})
