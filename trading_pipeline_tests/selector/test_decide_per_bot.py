"""Each bot is offered only strategies tuned on its own series and interval; bot3 only those on
its momentum top-5, recomputed at the decision from closed bars and recorded in the reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.bots.spec import CASH, FLEET, FLEET_BY_NAME
from trading_pipeline.market.momentum_pick import momentum_pick
from trading_pipeline.selector.decide import decide_once, eligible_candidates, momentum_picks
from trading_pipeline.selector.live import StoreCandles
from trading_pipeline.selector.model import Candidate
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.store import write_frames
from trading_pipeline_tests.selector.decision_support import (
    CANDIDATES,
    START,
    FixedModel,
    fleet_bars,
    hours,
    stub_state,
)

EMA_SOL_5M = Candidate("ema_cross@spot-SOLUSDT-5m", "ema_cross", 1, {}, "spot-SOLUSDT-5m", "5m")
EMA_SOL_1H = Candidate("ema_cross@spot-SOLUSDT-1h", "ema_cross", 1, {}, "spot-SOLUSDT-1h", "1h")
MOM = {
    s: Candidate(f"momentum@spot-{s}-1h", "momentum", 1, {}, f"spot-{s}-1h", "1h")
    for s in ("SOLUSDT", "XRPUSDT", "BTCUSDT")
}


def test_a_bot_is_offered_only_candidates_tuned_at_its_own_interval() -> None:
    bot2 = FLEET_BY_NAME["bot2"]  # 5m, ema_cross among its families, SOLUSDT in its universe
    ids = [c.id for c in eligible_candidates((*CANDIDATES, EMA_SOL_5M, EMA_SOL_1H), bot2)]
    assert ids == [CASH, EMA_SOL_5M.id]  # the hourly ema_cross study is not bot2's


@pytest.mark.slow  # ten series read from a store
def test_bot3_is_offered_only_its_momentum_pick_and_the_pick_is_recorded(tmp_path: Path) -> None:
    n = 400
    coins = ("BTCUSDT", "SOLUSDT", "XRPUSDT", "ETHUSDT", "BNBUSDT", "ADAUSDT")
    frames = {
        s: make_bars(n, seed=i, start=START, vol=0.003, drift=0.002 * (i - 1))
        for i, s in enumerate(coins)
    }
    frames["BTCUSDT"] = make_bars(n, seed=9, start=START, vol=0.003, drift=-0.004)  # falls most
    write_frames(tmp_path / "history", frames)
    now = START + hours(n)
    picks = momentum_picks(StoreCandles(tmp_path / "history"), FLEET, now)
    assert set(picks) == {"bot3"}
    pick = picks["bot3"]
    # the same pick as computed from the frames themselves (bars closed by now)
    direct = momentum_pick(frames, at=now, interval="1h", top=5, lookback=168)
    assert pick.picked == direct.picked and "BTCUSDT" not in pick.picked
    assert set(pick.unranked) == {"DOGEUSDT", "LTCUSDT", "LINKUSDT", "AVAXUSDT"}
    # a model that likes momentum on BTC best: bot3 may not take it (BTC is out of its pick)
    model = FixedModel(
        {CASH: 0.05, MOM["BTCUSDT"].id: 0.6, MOM["SOLUSDT"].id: 0.25, MOM["XRPUSDT"].id: 0.1},
        candidates=(CANDIDATES[0], *MOM.values()),
    )
    out = {
        d.bot: d
        for d in decide_once(
            model, fleet_bars(60), now, {}, fleet=FLEET, state_fn=stub_state, picks=picks
        )
    }
    bot3 = out["bot3"]
    assert MOM["BTCUSDT"].id not in bot3.probabilities
    assert bot3.choice == MOM["SOLUSDT"].id and bot3.symbols == ("SOLUSDT",)
    assert pick.describe() in bot3.reason and "momentum top 5 of 10" in bot3.reason
    # without the pick BTC would have been chosen: the restriction is what changed it
    free = decide_once(model, fleet_bars(60), now, {}, fleet=FLEET, state_fn=stub_state)
    assert next(d for d in free if d.bot == "bot3").choice == MOM["BTCUSDT"].id


@pytest.mark.slow  # two stores of ten series
def test_a_later_bar_does_not_move_an_earlier_decisions_pick(tmp_path: Path) -> None:
    n = 300
    coins = ("BTCUSDT", "SOLUSDT", "XRPUSDT", "ETHUSDT", "BNBUSDT", "ADAUSDT")
    frames = {s: make_bars(n, seed=i, start=START, vol=0.003) for i, s in enumerate(coins)}
    at = START + hours(200)
    write_frames(tmp_path / "a", frames)
    before = momentum_picks(StoreCandles(tmp_path / "a"), FLEET, at)["bot3"]
    late = pl.col("open_time") >= at
    worst = [s for s in coins if s not in before.picked]
    changed = {
        s: df.with_columns(
            [
                pl.when(late)
                .then(pl.col(c) * (9.0 if s in worst else 0.1))
                .otherwise(pl.col(c))
                .alias(c)
                for c in ("open", "high", "low", "close")
            ]
        )
        for s, df in frames.items()
    }
    write_frames(tmp_path / "b", changed)
    after = momentum_picks(StoreCandles(tmp_path / "b"), FLEET, at)["bot3"]
    assert len(before.picked) == 5 and not set(before.unranked) & set(coins)
    assert after.picked == before.picked and after.scores == before.scores
    assert (
        momentum_picks(StoreCandles(tmp_path / "b"), FLEET, at + timedelta(hours=1))["bot3"].scores
        != before.scores
    )
