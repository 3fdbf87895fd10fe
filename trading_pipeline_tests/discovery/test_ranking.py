"""Top strategies by robustness: minimum trades, deflated Sharpe, PBO, consistency."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.discovery.ranking import RankingRule, rank, series_trials, top
from trading_pipeline.discovery.results import FoldResult, StudyResult, deflate, pooled_variance
from trading_pipeline.discovery.robustness import PBOResult
from trading_pipeline.discovery.tuning import TuneSpec, WalkForward


def candidate(
    name: str,
    *,
    mean: float,
    trades: int,
    pbo: float | None,
    consistency: float,
    n_trials: int = 100,
    seed: int = 0,
    bars: int = 4000,
) -> StudyResult:
    rng = np.random.default_rng(seed)
    r = mean + 0.01 * rng.standard_normal(bars)
    spec = TuneSpec(
        name, 1, "spot-X-1h", "1h", WalkForward(folds=4), CostModel(), 1000.0, bars, "x"
    )
    variance = 1.0 / bars
    metrics = {
        "sharpe": float(r.mean() / r.std() * np.sqrt(8760)),
        "total_return": 0.1,
        "max_drawdown": 0.2,
        "trades": float(trades),
        "bars": float(bars),
    }
    fold = FoldResult(0, (0, 10), (10, 20), {"p": 1}, 1.0, n_trials, {"sharpe": 1.0})
    return StudyResult(
        spec=spec,
        folds=[fold],
        open_time=pl.Series("open_time", list(range(bars))),
        returns=r,
        in_position=np.ones(bars, bool),
        entries=np.zeros(bars, bool),
        metrics=metrics,
        bh_returns=np.zeros(bars),
        bh_metrics={"sharpe": 0.0, "total_return": 0.0},
        bh_in_position=np.ones(bars, bool),
        bh_entries=np.zeros(bars, bool),
        dsr=deflate(r, variance, n_trials),
        trial_variance=variance,
        pbo=None if pbo is None else PBOResult(pbo, np.zeros(1), 8, 1),
        consistency=consistency,
        n_trials=n_trials,
        trials=pl.DataFrame(),
    )


def test_robust_beats_the_higher_sharpe_that_is_overfit_or_thin() -> None:
    robust = candidate("steady", mean=0.002, trades=80, pbo=0.1, consistency=1.0, seed=1)
    overfit = candidate("overfit", mean=0.003, trades=80, pbo=0.9, consistency=1.0, seed=2)
    thin = candidate("thin", mean=0.004, trades=3, pbo=0.0, consistency=1.0, seed=3)
    noise = candidate("noise", mean=0.0, trades=200, pbo=0.4, consistency=0.5, seed=4)
    table = rank([noise, thin, overfit, robust])
    assert table["strategy"].to_list()[0] == "steady"
    assert table.filter(pl.col("strategy") == "steady")["robust"][0]
    assert not table.filter(pl.col("strategy") == "overfit")["robust"][0]  # PBO 0.9
    # too few trades: listed last, never in the top, whatever its Sharpe ratio
    assert table["strategy"].to_list()[-1] == "thin"
    assert "thin" not in top([noise, thin, overfit, robust], 3)["strategy"].to_list()
    assert table["rank"].to_list() == [1, 2, 3, 4]


def test_deflation_counts_every_trial_of_every_candidate() -> None:
    a = candidate("a", mean=0.0006, trades=50, pbo=0.2, consistency=0.75, n_trials=50, seed=5)
    alone = rank([a])["dsr_probability"][0]
    crowd = [a] + [
        candidate(f"c{i}", mean=0.0, trades=50, pbo=0.5, consistency=0.5, n_trials=500, seed=i)
        for i in range(10, 14)
    ]
    together = rank(crowd).filter(pl.col("strategy") == "a")["dsr_probability"][0]
    assert together < alone  # more trials tried → a higher bar for luck


def test_inconsistent_or_missing_pbo_is_not_robust() -> None:
    rule = RankingRule(min_trades=10, dsr_level=0.5, max_pbo=0.5, min_consistency=0.75)
    flaky = candidate("flaky", mean=0.003, trades=40, pbo=0.1, consistency=0.5, seed=6)
    unknown = candidate("unknown", mean=0.003, trades=40, pbo=None, consistency=1.0, seed=7)
    ok = candidate("ok", mean=0.001, trades=40, pbo=0.2, consistency=1.0, seed=8)
    table = rank([flaky, unknown, ok], rule)
    assert table.filter(pl.col("robust"))["strategy"].to_list() == ["ok"]
    assert table["strategy"][0] == "ok"


def test_a_candidate_below_buy_and_hold_is_labelled_and_not_robust() -> None:
    rule = RankingRule(min_trades=10, dsr_level=0.5, max_pbo=0.25, min_consistency=0.5)
    a = candidate("a", mean=0.002, trades=40, pbo=0.1, consistency=1.0, seed=9)
    b = candidate("b", mean=0.002, trades=40, pbo=0.1, consistency=1.0, seed=9)
    b.spec = TuneSpec(
        "b", 1, "spot-X-1h", "1h", WalkForward(folds=4), CostModel(), 1000.0, 4000, "x"
    )
    b.bh_metrics = {"sharpe": b.metrics["sharpe"] + 0.1, "total_return": 0.5}
    table = rank([b, a], rule)
    rows = {r["strategy"]: r for r in table.iter_rows(named=True)}
    assert rows["a"]["robust"] and rows["a"]["verdict"] == "robust"
    assert not rows["b"]["robust"] and rows["b"]["verdict"] == "below buy-and-hold"
    assert table["strategy"].to_list() == ["a", "b"]


def test_each_series_is_deflated_for_every_trial_tried_on_it() -> None:
    a = candidate("a", mean=0.0006, trades=50, pbo=0.2, consistency=0.75, n_trials=50, seed=5)
    alone = rank([a])["dsr_probability"][0]
    # candidates on another series are another selection: they do not raise a's bar
    other = candidate("o", mean=0.0, trades=50, pbo=0.5, consistency=0.5, n_trials=5000, seed=6)
    other.spec = TuneSpec(
        "o", 1, "spot-Y-1h", "1h", WalkForward(folds=4), CostModel(), 1000.0, 4000, "x"
    )
    beside = rank([a, other]).filter(pl.col("strategy") == "a")
    assert beside["dsr_probability"][0] == alone
    # the catalog's count of every trial on the series (studies not ranked here included) does
    counted = rank([a], trials={"spot-X-1h": 5000})
    assert counted["series_trials"][0] == 5000 and counted["n_trials"][0] == 50
    assert counted["dsr_probability"][0] < alone


def test_the_series_variance_is_that_of_all_trials_about_their_folds_mean() -> None:
    rng = np.random.default_rng(1)
    a = candidate("a", mean=0.001, trades=50, pbo=0.2, consistency=0.75, n_trials=8, seed=1)
    b = candidate("b", mean=0.001, trades=50, pbo=0.2, consistency=0.75, n_trials=8, seed=2)
    frames = []
    for r, shift in ((a, 0.0), (b, 0.05)):
        # two folds of four trials; the folds' markets differ (their means), not their luck
        s = {
            0: 0.01 + shift + 0.002 * rng.standard_normal(4),
            1: -0.02 + 0.002 * rng.standard_normal(4),
        }
        frame = pl.DataFrame(
            {"fold": [0] * 4 + [1] * 4, "test_sharpe_per_bar": np.concatenate([s[0], s[1]])}
        )
        r.trials = frame
        frames.append([s[0].tolist(), s[1].tolist()])
    sel = series_trials([a, b])["spot-X-1h"]
    expected = pooled_variance(frames[0] + frames[1])
    assert sel.n_trials == 16 and sel.variance == pytest.approx(expected)
    everything = np.concatenate([f for fr in frames for f in fr])
    assert sel.variance < float(np.var(everything, ddof=1)) / 10  # fold means are not luck
