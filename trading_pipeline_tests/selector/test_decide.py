"""The decision per bot: eligibility, renormalisation, hysteresis, champion caching, no champion."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.bots.spec import CASH, FLEET, FLEET_BY_NAME
from trading_pipeline.selector.decide import (
    NO_CHAMPION,
    Decider,
    Hysteresis,
    decide_once,
    eligible_candidates,
    renormalise,
)
from trading_pipeline.selector.decisions import Decision, DecisionStore
from trading_pipeline.selector.live import StoreCandles
from trading_pipeline.selector.registry import InMemoryRegistry
from trading_pipeline_tests.fakes.store import write_store
from trading_pipeline_tests.selector.decision_support import (
    BTC,
    CANDIDATES,
    ETH,
    HEDGE_ETH,
    MOM_BTC,
    SMA_BTC,
    SMA_ETH,
    START,
    FixedModel,
    fleet_bars,
    hours,
    stub_state,
)

N = 60  # bars in the first tick


def tick(
    model: FixedModel,
    i: int,
    current: Mapping[str, Decision],
    *,
    new_bar: bool = True,
    h: Hysteresis | None = None,
) -> dict[str, Decision]:
    """Decision ``i``: one more closed bar than tick ``i - 1`` unless ``new_bar`` is False."""
    n = N + i if new_bar else N
    bars = fleet_bars(n)
    now = START + hours(n)
    out = decide_once(
        model, bars, now, current, hysteresis=h or Hysteresis(), state_fn=stub_state, fleet=FLEET
    )
    return {d.bot: d for d in out}


def test_eligible_candidates_follow_the_bot_spec() -> None:
    ids = {
        b: [c.id for c in eligible_candidates(CANDIDATES, FLEET_BY_NAME[b])] for b in FLEET_BY_NAME
    }
    assert ids["bot1"] == [CASH, SMA_BTC.id, SMA_ETH.id]  # sma_cross on its majors
    assert ids["bot3"] == [CASH, MOM_BTC.id]  # momentum; BTC is in its universe
    assert ids["bot4"] == [CASH]  # no arbitrage candidate: cash only
    assert ids["bot5"] == [CASH, HEDGE_ETH.id]
    assert renormalise({"a": 0.2, "b": 0.6, "c": 0.2}, ["a", "b"]) == pytest.approx(
        {"a": 0.25, "b": 0.75}
    )
    assert renormalise({"a": 0.0, "z": 1.0}, ["a", CASH]) == {"a": 0.0, CASH: 1.0}


def test_probabilities_are_renormalised_per_bot_and_recorded() -> None:
    model = FixedModel(
        {CASH: 0.1, SMA_BTC.id: 0.3, SMA_ETH.id: 0.1, MOM_BTC.id: 0.3, HEDGE_ETH.id: 0.2}
    )
    out = tick(model, 0, {})
    bot1 = out["bot1"]
    assert bot1.choice == SMA_BTC.id and bot1.changed
    assert bot1.probabilities == pytest.approx({CASH: 0.2, SMA_BTC.id: 0.6, SMA_ETH.id: 0.2})
    assert (bot1.family, bot1.version, bot1.symbols, bot1.series) == (
        "sma_cross",
        1,
        ("BTCUSDT",),
        BTC,
    )
    assert bot1.params == SMA_BTC.params
    assert out["bot3"].choice == MOM_BTC.id  # 0.3 vs cash 0.1
    assert out["bot5"].choice == HEDGE_ETH.id
    assert out["bot4"].choice == CASH and out["bot4"].probabilities == {CASH: 1.0}
    assert out["bot4"].family == CASH and out["bot4"].symbols == ()
    assert len({d.inputs_hash for d in out.values()}) == 1
    assert model.calls == 1  # one prediction per tick, shared by the bots


class ExpectedReturnModel(FixedModel):
    """A model whose training chose the expected-return rule: it ranks by expected return."""

    decision_rule = "expected_return"

    def __init__(self, probs: Mapping[str, float], expected: Mapping[str, float]) -> None:
        super().__init__(probs)
        self.expected = dict(expected)

    def expected_returns(self, state: Mapping[str, float]) -> dict[str, float]:
        return dict(self.expected)


def test_a_model_trained_for_expected_return_is_followed_by_that_rule() -> None:
    # cash is the most probable pick for bot1, but SMA on ETH has the higher expected return
    probs = {CASH: 0.5, SMA_BTC.id: 0.2, SMA_ETH.id: 0.3, MOM_BTC.id: 0.0, HEDGE_ETH.id: 0.0}
    expected = {CASH: 0.0, SMA_BTC.id: -0.01, SMA_ETH.id: 0.004, MOM_BTC.id: 0.0, HEDGE_ETH.id: 0.0}
    assert tick(FixedModel(probs), 0, {})["bot1"].choice == CASH
    assert tick(ExpectedReturnModel(probs, expected), 0, {})["bot1"].choice == SMA_ETH.id


def test_alternating_probabilities_do_not_flap() -> None:
    a = {CASH: 0.15, SMA_BTC.id: 0.45, SMA_ETH.id: 0.40}
    b = {CASH: 0.15, SMA_BTC.id: 0.40, SMA_ETH.id: 0.45}
    model = FixedModel(a)
    current = tick(model, 0, {})
    assert current["bot1"].choice == SMA_BTC.id
    for i in range(1, 21):
        model.probs = b if i % 2 else a
        current = tick(model, i, current)
        assert current["bot1"].choice == SMA_BTC.id, current["bot1"].reason
        assert not current["bot1"].changed
    assert current["bot1"].streak == 0  # a is on top again at the last tick


def test_a_persistent_new_pick_takes_over_after_persist_ticks() -> None:
    model = FixedModel({CASH: 0.15, SMA_BTC.id: 0.45, SMA_ETH.id: 0.40})
    current = tick(model, 0, {})
    model.probs = {CASH: 0.15, SMA_BTC.id: 0.40, SMA_ETH.id: 0.45}  # leads by 0.05 < margin
    seen = []
    for i in range(1, 4):
        current = tick(model, i, current)
        seen.append((current["bot1"].choice, current["bot1"].streak, current["bot1"].changed))
    assert seen == [(SMA_BTC.id, 1, False), (SMA_BTC.id, 2, False), (SMA_ETH.id, 0, True)]
    assert "3 ticks" in current["bot1"].reason


def test_ticks_on_the_same_bars_do_not_count_as_persistence() -> None:
    model = FixedModel({CASH: 0.15, SMA_BTC.id: 0.45, SMA_ETH.id: 0.40})
    current = tick(model, 0, {}, new_bar=False)
    model.probs = {CASH: 0.15, SMA_BTC.id: 0.40, SMA_ETH.id: 0.45}
    for _ in range(6):  # an hourly series read every 5 minutes: the same evidence again
        current = tick(model, 0, current, new_bar=False)
        assert current["bot1"].choice == SMA_BTC.id
        assert current["bot1"].streak == 1


def test_a_clear_lead_switches_at_once() -> None:
    model = FixedModel({CASH: 0.15, SMA_BTC.id: 0.45, SMA_ETH.id: 0.40})
    current = tick(model, 0, {})
    model.probs = {CASH: 0.1, SMA_BTC.id: 0.3, SMA_ETH.id: 0.6}
    current = tick(model, 1, current)
    assert current["bot1"].choice == SMA_ETH.id and current["bot1"].changed
    assert "beats" in current["bot1"].reason


def test_hysteresis_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="persist"):
        Hysteresis(persist=0)
    with pytest.raises(ValueError, match="margin"):
        Hysteresis(margin=1.5)
    # persist=1 switches on the first tick the new pick leads
    model = FixedModel({CASH: 0.15, SMA_BTC.id: 0.45, SMA_ETH.id: 0.40})
    current = tick(model, 0, {})
    model.probs = {CASH: 0.15, SMA_BTC.id: 0.40, SMA_ETH.id: 0.45}
    current = tick(model, 1, current, h=Hysteresis(persist=1))
    assert current["bot1"].choice == SMA_ETH.id


@pytest.fixture
def history(tmp_path: Path) -> Path:
    root = tmp_path / "history"
    for key, df in fleet_bars(400).items():
        write_store(root, key, df)
    return root


def _decider(registry: InMemoryRegistry | None, history: Path, tmp_path: Path) -> Decider:
    return Decider(
        registry,
        StoreCandles(history),
        DecisionStore(tmp_path / "decisions.sqlite"),
        state_fn=stub_state,
        fleet=FLEET,
    )


def test_no_champion_means_cash_for_every_bot(history: Path, tmp_path: Path) -> None:
    decider = _decider(InMemoryRegistry(), history, tmp_path)
    result = decider.tick(START + hours(300))
    assert [d.choice for d in result.decisions] == [CASH] * 5
    assert {d.reason for d in result.decisions} == {NO_CHAMPION}
    assert result.changed == () and result.model.version is None
    assert decider.store is not None and decider.store.history().height == 5


def test_champion_loaded_once_and_reloaded_when_the_alias_moves(
    history: Path, tmp_path: Path
) -> None:
    registry = InMemoryRegistry()
    v1 = registry.register(
        FixedModel({CASH: 0.2, SMA_BTC.id: 0.8}), name="strategy-selector", metrics={}
    )
    registry.promote("strategy-selector", v1)
    decider = _decider(registry, history, tmp_path)
    first = decider.tick(START + hours(300))
    assert decider.loads == 1 and first.model.version == 1
    assert first.changed == ("bot1", "bot2", "bot3", "bot4", "bot5")  # first model decisions
    assert {d.bot: d.choice for d in first.decisions}["bot1"] == SMA_BTC.id
    second = decider.tick(START + hours(301))
    assert decider.loads == 1 and second.changed == ()
    # a new champion that no longer offers the current pick
    v2 = registry.register(
        FixedModel({CASH: 0.3, SMA_ETH.id: 0.7}, candidates=(CANDIDATES[0], SMA_ETH)),
        name="strategy-selector",
        metrics={},
    )
    registry.promote("strategy-selector", v2)
    third = decider.tick(START + hours(302))
    assert decider.loads == 2 and third.model.version == 2
    bot1 = {d.bot: d for d in third.decisions}["bot1"]
    assert bot1.choice == SMA_ETH.id and bot1.changed and "not offered" in bot1.reason
    assert third.changed == ("bot1",)
    assert {d.model_version for d in third.decisions} == {2}
    ids = third.changed_ids
    assert third.run_key == f"decisions-{ids[0]}"


def test_tick_without_record_writes_nothing_and_uses_only_closed_bars(
    history: Path, tmp_path: Path
) -> None:
    registry = InMemoryRegistry()
    registry.promote(
        "strategy-selector",
        registry.register(FixedModel({CASH: 1.0}), name="strategy-selector", metrics={}),
    )
    seen: list[datetime] = []

    def spy(bars: Mapping[str, pl.DataFrame], **kw: object) -> dict[str, float]:
        seen.extend(df["open_time"][-1] for df in bars.values())
        return {}

    decider = Decider(
        registry,
        StoreCandles(history),
        DecisionStore(tmp_path / "d.sqlite"),
        state_fn=spy,
        fleet=FLEET,
    )
    now = START + hours(300) + hours(1) / 2  # half-way through bar 300
    result = decider.tick(now, record=False)
    assert all(d.id is None for d in result.decisions)
    assert not (tmp_path / "d.sqlite").exists()
    assert seen == [START + hours(299)] * 2  # bar 300 is still open
    assert {BTC, ETH} == set(FixedModel({}).series)
