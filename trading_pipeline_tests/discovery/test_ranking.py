"""Top strategies by robustness: minimum trades, deflated Sharpe, PBO, consistency."""

from __future__ import annotations

import numpy as np
import polars as pl

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.discovery.ranking import RankingRule, rank, top
from trading_pipeline.discovery.results import FoldResult, StudyResult, deflate
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
