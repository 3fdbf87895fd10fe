"""bot3's "top 5 by momentum": computed only from bars closed by the decision time."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from trading_pipeline.market.momentum_pick import momentum_pick, trailing_return
from trading_pipeline_tests.fakes.bars import START, make_bars

SYMBOLS = [f"C{i}USDT" for i in range(8)]
AT = START + timedelta(hours=300)


def _frames() -> dict[str, pl.DataFrame]:
    # eight coins with different drifts: a spread of trailing returns to rank
    return {
        s: make_bars(400, seed=i, drift=0.002 * (i - 4), vol=0.004) for i, s in enumerate(SYMBOLS)
    }


def _scramble_after(df: pl.DataFrame, at_ms: int, factor: float) -> pl.DataFrame:
    """Every bar that has not closed by ``at`` multiplied by ``factor`` (its close included)."""
    late = (pl.col("open_time").dt.epoch("ms") + 3_600_000) > at_ms
    return df.with_columns(
        [
            pl.when(late).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        ]
    )


def test_the_pick_ranks_by_trailing_return_over_closed_bars() -> None:
    frames = _frames()
    pick = momentum_pick(frames, at=AT, interval="1h", top=5, lookback=48)
    assert len(pick.picked) == 5
    scores = [pick.scores[s] for s in pick.picked]
    assert scores == sorted(scores, reverse=True)
    left = [pick.scores[s] for s in SYMBOLS if s not in pick.picked]
    assert min(scores) >= max(left)
    # the score is the close 48 closed bars back to the last closed bar (the one opening at
    # AT - 1h), recomputed here by hand from the frame
    df = frames[pick.picked[0]]
    closes = df.filter(pl.col("open_time") <= AT - timedelta(hours=1))["close"]
    assert pick.scores[pick.picked[0]] == pytest.approx(closes[-1] / closes[-49] - 1)
    assert "momentum top 5 of 8" in pick.describe()


def test_changing_future_bars_does_not_change_the_pick() -> None:
    frames = _frames()
    before = momentum_pick(frames, at=AT, interval="1h", top=5, lookback=48)
    at_ms = int(AT.timestamp() * 1000)
    # the worst coins so far become the best after AT: a lookahead would pick them
    worst = [s for s in SYMBOLS if s not in before.picked]
    changed = {
        s: _scramble_after(df, at_ms, 5.0 if s in worst else 0.2) for s, df in frames.items()
    }
    after = momentum_pick(changed, at=AT, interval="1h", top=5, lookback=48)
    assert after.picked == before.picked
    assert after.scores == before.scores
    # ... while a decision an hour later sees the changed (now closed) bar and re-ranks
    later = momentum_pick(changed, at=AT + timedelta(hours=1), interval="1h", top=5, lookback=48)
    assert set(later.picked) != set(before.picked)


def test_the_bar_still_open_at_the_decision_is_not_read() -> None:
    df = make_bars(100, seed=1)
    at = START + timedelta(hours=60, minutes=30)  # the 60th bar is half-way through
    base = trailing_return(df, at=at, interval="1h", lookback=10)
    bumped = _scramble_after(df, int(at.timestamp() * 1000), 3.0)
    assert trailing_return(bumped, at=at, interval="1h", lookback=10) == base


def test_symbols_without_enough_closed_bars_are_listed_not_ranked() -> None:
    frames: dict[str, pl.DataFrame | None] = dict(_frames())
    frames["NEWUSDT"] = make_bars(10, seed=9, start=AT - timedelta(hours=10))
    frames["GONEUSDT"] = None
    pick = momentum_pick(frames, at=AT, interval="1h", top=5, lookback=48)
    assert pick.unranked == {"NEWUSDT": "fewer than 49 closed bars", "GONEUSDT": "no history"}
    assert "NEWUSDT" not in pick.picked and "GONEUSDT" not in pick.picked
    assert pick.to_dict()["unranked"] == dict(sorted(pick.unranked.items()))
