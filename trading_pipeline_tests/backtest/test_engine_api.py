"""The public engine API that discovery and the bots call: results, ranges, refusals."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel, RiskRules
from trading_pipeline.backtest.engine import backtest, buy_and_hold, lookahead_check, run_grid
from trading_pipeline.backtest.metrics import METRICS
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.registry import FAMILIES
from trading_pipeline_tests.fakes.bars import make_bars


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars(3000, seed=31)


def test_backtest_detail_has_equity_and_trades(bars: pl.DataFrame) -> None:
    res = backtest(bars, "sma_cross", {"fast": 8, "slow": 40}, interval="1h", detail=True)
    assert set(res.metrics) == set(METRICS)
    assert res.equity is not None and res.equity.shape == (3000,)
    assert res.equity[-1] == pytest.approx(res.metrics["final_equity"])
    trades = res.trades
    assert trades is not None and trades.height == res.metrics["trades"]
    assert {"entry_bar", "exit_bar", "entry_time", "exit_time", "pnl", "return"} <= set(
        trades.columns
    )
    closed = trades.filter(pl.col("exit_bar") >= 0)
    assert (closed["exit_bar"] > closed["entry_bar"]).all()
    # every closed trade's pnl adds up to the change in equity (flat at the end or marked)
    total = trades["pnl"].sum()
    assert total == pytest.approx(res.metrics["final_equity"] - 1000.0, rel=1e-9)


def test_every_family_backtests_and_grids(bars: pl.DataFrame) -> None:
    for fam in FAMILIES.values():
        one = backtest(bars, fam, {}, interval="1h")
        assert np.isfinite(one.metrics["final_equity"]) and one.metrics["final_equity"] > 0
        grid = run_grid(bars, fam, [fam.default_params()], interval="1h")
        assert grid.metrics["final_equity"][0] == one.metrics["final_equity"]


def test_grid_result_is_columnar_and_ranked(bars: pl.DataFrame) -> None:
    fam = FAMILIES["sma_cross"]
    res = run_grid(bars, fam, fam.grid(fast=[5, 10, 20], slow=[30, 60]), interval="1h")
    df = res.to_polars()
    assert df.height == 6 and {"fast", "slow", "sharpe", "final_equity"} <= set(df.columns)
    order = res.order("sharpe")
    sharpes = res.metrics["sharpe"][order]
    assert np.all(np.diff(sharpes) <= 0)
    best = res.row(int(order[0]))
    assert best["sharpe"] == sharpes[0] and best["params"]["fast"] in (5, 10, 20)


def test_fold_range_matches_a_slice_with_warmup(bars: pl.DataFrame) -> None:
    params = {"fast": 5, "slow": 50}
    fold = backtest(bars, "sma_cross", params, interval="1h", start=1000, stop=2000)
    # the same fold from a slice that keeps 200 warm-up bars before it
    sliced = backtest(bars[800:2000], "sma_cross", params, interval="1h", start=200)
    assert fold.bars == sliced.bars == 1000
    assert fold.metrics == sliced.metrics
    bh = buy_and_hold(bars, interval="1h", start=1000, stop=2000)
    price = bars["close"].to_numpy()
    # bought at the open after the fold's first bar, held to the fold's last close
    start_px = bars["open"][1001] * 1.0002
    assert bh["final_equity"] == pytest.approx(1000 / 1.001 / start_px * price[1999], rel=1e-12)


def test_refusals(bars: pl.DataFrame) -> None:
    with pytest.raises(UserInputError, match="empty data"):
        backtest(bars.head(0), "sma_cross", {}, interval="1h")
    nan = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("open")).alias("open")
    )
    with pytest.raises(UserInputError, match="bar 7"):
        backtest(nan, "sma_cross", {}, interval="1h")
    with pytest.raises(UserInputError, match="bar range"):
        backtest(bars, "sma_cross", {}, interval="1h", start=10, stop=5)
    with pytest.raises(UserInputError, match="unknown interval"):
        backtest(bars, "sma_cross", {}, interval="7x")
    with pytest.raises(UserInputError, match="size"):
        RiskRules(size=1.5)
    with pytest.raises(UserInputError, match="slippage"):
        CostModel(slippage_bps=-1)
    with pytest.raises(UserInputError, match="grid is empty"):
        run_grid(bars, "sma_cross", [], interval="1h")


def test_scalping_families_apply_their_tight_exits(bars: pl.DataFrame) -> None:
    fam = FAMILIES["rsi_reversion"]
    tight = backtest(
        bars, fam, {"stop_loss": 0.002, "take_profit": 0.002}, interval="1h", detail=True
    )
    assert tight.trades is not None
    closed = tight.trades.filter(pl.col("exit_bar") >= 0)
    # exits at the stop/target: every closed trade moved about 0.2 % (gaps can add more)
    moves = (closed["exit_price"] / closed["entry_price"] - 1).abs()
    assert (moves.median() or 0) < 0.01
    loose = backtest(bars, fam, {"stop_loss": 0, "take_profit": 0}, interval="1h")
    assert loose.metrics["trades"] < tight.metrics["trades"]
    # the caller's risk rules win over the family's defaults
    over = backtest(bars, fam, {}, interval="1h", risk=RiskRules(stop_loss=0.05, take_profit=0.05))
    assert over.metrics["trades"] != tight.metrics["trades"]


def test_lookahead_report_points(bars: pl.DataFrame) -> None:
    rep = lookahead_check("donchian_breakout", bars, {"window": 30}, points=7)
    assert rep.clean and len(rep.points) == 7 and rep.points[-1] == 2999
