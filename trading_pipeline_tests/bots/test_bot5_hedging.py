"""bot5: the hedging family as the spec default, through the same runner, on the 2022 crash.

Stable-coin mode on BTCUSDT with ETHUSDT as partner (spot: no futures leg). Reconciled against
the kernel (``run_signals`` on the first series with the family's target as state flags) and
compared with ``backtest_multi``'s hedging simulation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.engine import run_signals
from trading_pipeline.backtest.multi import backtest_multi
from trading_pipeline.bots.assignment import RiskLimits, default_assignment
from trading_pipeline.bots.clock import to_ms
from trading_pipeline.bots.replay import backtest_window, reconcile, replay_bot
from trading_pipeline.bots.spec import bot_spec
from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.strategies.base import LONG_ENTRY, LONG_EXIT, Signals
from trading_pipeline.strategies.registry import get_family

pytestmark = pytest.mark.slow  # whole-fleet and multi-bot replays over thousands of bars

START, END = datetime(2022, 3, 15, tzinfo=UTC), datetime(2022, 6, 30, tzinfo=UTC)
WARM_FROM = datetime(2021, 2, 1, tzinfo=UTC)  # > the runner's window (8,640 bars) before START
LOOSE = RiskLimits(daily_loss=1.0, max_position_fraction=1.0, max_drawdown=1.0)


@pytest.fixture(scope="module")
def crash(real_data: Path) -> dict[str, pl.DataFrame]:
    """Real Binance BTC/USDT and ETH/USDT hourly bars, February 2021 → June 2022."""
    folder = real_data / "Roshan7869-algotrading" / "freqtrade_binance_spot_1h"
    if not folder.is_dir():
        pytest.skip(f"absent: {folder}")
    return {
        sym: read_candle_file(folder / f"{base}_USDT-1h.feather").filter(
            pl.col("open_time").is_between(WARM_FROM, END, closed="left")
        )
        for sym, base in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH"))
    }


def test_bot5_default_is_hedging_in_stable_coin_mode() -> None:
    spec = bot_spec("bot5")
    a = default_assignment("bot5")
    assert spec.default_family == a.family == "hedging"
    assert a.symbols == ("BTCUSDT", "ETHUSDT")
    fam = get_family("hedging")
    assert a.params == fam.validate({})  # the family's defaults, spelled out in the spec
    assert a.params["reduce_to"] == 0.0 and a.params["use_bear"] is True


def _holding(ledger_fills: pl.DataFrame, symbol: str, at: datetime) -> float:
    f = ledger_fills.filter((pl.col("symbol") == symbol) & (pl.col("time_ms") <= to_ms(at)))
    return float(f["base_delta"].sum()) if f.height else 0.0


def test_bot5_moves_to_the_stable_coin_in_the_crash(
    crash: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    """The spec default (BTC and ETH, 5 % of $1,000) over 2022-03-15 → 06-30: risk-on late
    March (it buys both), risk-off (bear) from 11 April: both sold, stable coin through the
    LUNA and 3AC legs of the crash."""
    a = default_assignment("bot5")
    r = replay_bot(a, crash, start=START, end=END, initial_cash=50.0, workdir=tmp_path / "b5")
    sells = r.fills.filter(pl.col("side") == "sell")
    assert set(r.fills.filter(pl.col("side") == "buy")["symbol"]) == {"BTCUSDT", "ETHUSDT"}
    assert sells.height >= 2 and set(sells["reason"]) <= {"exit", "risk"}
    # out of both coins at the two lows of the crash (LUNA, 12 May; 3AC/Celsius, 18 June)
    for day in (datetime(2022, 5, 12, 12, tzinfo=UTC), datetime(2022, 6, 18, 12, tzinfo=UTC)):
        assert _holding(r.fills, "BTCUSDT", day) == pytest.approx(0.0, abs=1e-12)
        assert _holding(r.fills, "ETHUSDT", day) == pytest.approx(0.0, abs=1e-12)
    s, e = backtest_window(crash["BTCUSDT"], START, END)
    btc = crash["BTCUSDT"]["close"]
    hold = float(btc[e - 1] / crash["BTCUSDT"]["open"][s + 1] - 1)
    ret = r.final / r.initial - 1.0
    assert hold < -0.4 and ret > hold / 4  # BTC fell > 40 %; bot5 lost under a quarter of that
    print(
        f"\nbot5 {START:%Y-%m-%d}..{END:%Y-%m-%d}: $50 -> {r.final:.2f} ({ret:+.1%}); BTC "
        f"{hold:+.1%}; fills {r.fills.height} (sells {sells.height}); risk events "
        f"{r.risk_events.height}"
    )


def test_bot5_fills_reconcile_with_the_backtester(
    crash: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    """BTC alone (the first series; corr_max 1 makes the partner irrelevant to the signal),
    risk limits out of the way: the paper fills equal the kernel's trades on the family's
    target (state flags: hold while the exposure is positive), and backtest_multi's hedging
    mode trades on the same bars."""
    base = default_assignment("bot5")
    a = base.with_(symbols=("BTCUSDT",), risk=LOOSE)
    btc = crash["BTCUSDT"]
    r = replay_bot(a, {"BTCUSDT": btc}, start=START, end=END, initial_cash=50.0, workdir=tmp_path)
    fam = get_family("hedging")
    sig = fam.signals(btc, a.params)
    exposure = np.asarray(sig.meta["exposure"])
    state = np.where(exposure > 0, LONG_ENTRY, LONG_EXIT).astype(np.int8)
    s, e = backtest_window(btc, START, END)
    metrics, _, trades = run_signals(
        btc, Signals(flags=state), cash=50.0, interval="1h", detail=True, start=s, stop=e
    )
    assert trades is not None and trades.height >= 1
    diffs = reconcile(
        r.fills,
        trades,
        replay_final_equity=r.final,
        backtest_final_equity=metrics["final_equity"],
    )
    assert diffs == []
    # backtest_multi (hedging mode) changes its position on the same bars: every replay fill is
    # at an open where the target of the bar before changed
    bt = backtest_multi({"BTCUSDT": btc}, fam, a.params, cash=50.0, interval="1h", start=s, stop=e)
    times = btc["open_time"].dt.epoch("ms").to_numpy()
    prev = np.concatenate([[0.0], exposure[s : e - 1]])  # the target in force at each open
    before = np.concatenate([[0.0], prev[:-1]])
    changes = {int(times[s + i]) for i in np.flatnonzero(prev != before)}
    assert set(r.fills["time_ms"].to_list()) == changes
    assert bt.metrics["trades"] == len(changes)
    print(
        f"\nbot5 BTC only: replay final {r.final:.4f}, kernel {metrics['final_equity']:.4f}, "
        f"backtest_multi {bt.metrics['final_equity']:.4f} (buys exposure × equity at the open "
        f"with costs on top; the runner spends its cash, costs included)"
    )
