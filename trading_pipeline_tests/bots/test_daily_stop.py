"""The daily-loss limit held inside the bar: the paper broker's protective stop, measured on
synthetic crashes and on the real May 2022 (LUNA) week, before (bar closes only) and after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.bots.assignment import Assignment, RiskLimits
from trading_pipeline.bots.replay import BotReplay, replay_bot
from trading_pipeline.bots.risk import DAY_MS
from trading_pipeline.market.schema import conform

START = datetime(2020, 1, 1, tzinfo=UTC)
H = 3_600_000
CRASH_AT = 2 * 24 + 10  # bar index: day 3, 10:00 UTC


def crash_bars(kind: str, n: int = 5 * 24) -> pl.DataFrame:
    """Hourly bars at 100 (tiny wiggle), with a −30 % move at :data:`CRASH_AT`: ``one_bar``
    (open 100, low = close = 70), ``gap`` (the bar opens at 70) or ``six_bars`` (−30 % over six
    bars, each opening at the previous close)."""
    close = np.full(n, 100.0) * (1.0 + 0.0005 * np.sin(np.arange(n)))
    if kind == "six_bars":
        step = 0.7 ** (1.0 / 6.0)
        for k in range(6):
            close[CRASH_AT + k] = close[CRASH_AT - 1] * step ** (k + 1)
        close[CRASH_AT + 6 :] = close[CRASH_AT + 5]
    else:
        close[CRASH_AT:] = close[CRASH_AT - 1] * 0.7
    open_ = np.concatenate([[close[0]], close[:-1]])
    if kind == "gap":
        open_[CRASH_AT] = close[CRASH_AT]
    high = np.maximum(open_, close) * 1.0002
    low = np.minimum(open_, close) * 0.9998
    t = int(START.timestamp() * 1000) + np.arange(n, dtype=np.int64) * H
    return conform(
        pl.DataFrame(
            {
                "open_time": pl.from_epoch(pl.Series(t), "ms"),
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": np.full(n, 10.0),
                "close_time": pl.from_epoch(pl.Series(t + H - 1), "ms"),
            }
        )
    )


def worst_day_loss(r: BotReplay) -> tuple[float, str]:
    """The largest fall of the equity marks below the UTC day's starting equity (the mark at
    00:00, or the starting cash), and that day."""
    eq = r.equity.with_columns(ms=pl.col("time").dt.epoch("ms")).sort("ms")
    ms, val = eq["ms"].to_list(), eq["equity"].to_list()
    start = {0: r.initial}
    worst, when = 0.0, ""
    for t, v in zip(ms, val, strict=True):
        day = (t - 1) // DAY_MS
        base = start.get(day)
        if base is None:  # the first mark of a day without a midnight mark
            base = start[max(start)]
        if t % DAY_MS == 0:
            start[t // DAY_MS] = v
        loss = 1.0 - v / base
        if loss > worst:
            worst, when = loss, datetime.fromtimestamp(day * DAY_MS / 1000, UTC).date().isoformat()
    return worst, when


def _replay(
    frames: dict[str, pl.DataFrame],
    tmp: Path,
    *,
    stop: bool,
    start: datetime = START,
    end: datetime = START + timedelta(days=5),
) -> BotReplay:
    a = Assignment(
        "bot1",
        1,
        tuple(frames),
        "1h",
        "buy_and_hold",
        1,
        {},
        0.3,
        RiskLimits(max_drawdown=1.0),
    )
    return replay_bot(
        a, frames, start=start, end=end, initial_cash=300.0, workdir=tmp, protective_stop=stop
    )


@pytest.mark.parametrize(
    ("kind", "at_least", "at_most"),
    [("one_bar", 0.29, 0.1005), ("six_bars", 0.11, 0.1005), ("gap", 0.29, 0.31)],
)
def test_a_crash_day_loses_the_limit_not_the_crash(
    kind: str, at_least: float, at_most: float, tmp_path: Path
) -> None:
    bars = {"BTCUSDT": crash_bars(kind)}
    before = _replay(bars, tmp_path / "before", stop=False)
    after = _replay(bars, tmp_path / "after", stop=True)
    lb, _ = worst_day_loss(before)
    la, day = worst_day_loss(after)
    print(f"\n{kind}: realised daily loss, bar closes only {lb:.2%} -> with the stop {la:.2%}")
    assert day == "2020-01-03"
    assert lb > at_least  # at bar closes only, (almost) the whole move is realised
    assert la <= at_most
    if kind != "gap":  # inside the bar the stop sells at the limit (plus slippage and fee)
        assert 0.099 <= la
        stops = after.fills.filter(pl.col("reason") == "stop")
        assert stops.height == 1 and float(stops["price"][0]) > 89.0
        kinds = after.risk_events["kind"].to_list()
        assert kinds == ["daily_loss"]
    else:  # the bar opened 30 % lower: the stop fills at that open, nothing better exists
        stops = after.fills.filter(pl.col("reason") == "stop")
        assert float(stops["price"][0]) == pytest.approx(70.0 * 0.9998 * (1 - 2e-4), rel=1e-3)
    # no entry on the rest of the crash day
    buys = after.fills.filter(
        (pl.col("side") == "buy")
        & (pl.col("time_ms") > (START + timedelta(days=2)).timestamp() * 1000)
        & (pl.col("time_ms") < (START + timedelta(days=3)).timestamp() * 1000)
    )
    assert buys.height == 0


def test_may_2022_luna_week_daily_losses_before_and_after_the_stop(
    luna_frames: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    """bot1 on BTC+ETH, $300, buy_and_hold: long into the LUNA collapse (2022-05-01..20)."""
    start, end = datetime(2022, 5, 1, tzinfo=UTC), datetime(2022, 5, 20, tzinfo=UTC)
    before = _replay(luna_frames, tmp_path / "before", stop=False, start=start, end=end)
    after = _replay(luna_frames, tmp_path / "after", stop=True, start=start, end=end)
    lb, db = worst_day_loss(before)
    la, da = worst_day_loss(after)
    print(
        f"\nMay 2022 (BTC+ETH, 1h): worst realised daily loss, bar closes only {lb:.2%} ({db})"
        f" -> with the stop {la:.2%} ({da}); final {before.final:.2f} -> {after.final:.2f}"
    )
    assert after.fills.filter(pl.col("reason") == "stop").height >= 1
    assert la <= 0.10 + 0.01  # the limit, plus slippage, fees and whatever a gap jumped
    assert la < lb
