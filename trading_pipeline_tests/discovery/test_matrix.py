"""The strategy × regime matrix: out-of-sample bars split by regime, buy-and-hold beside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.discovery.catalog import best_per_regime
from trading_pipeline.discovery.evaluate import metrics_from_returns
from trading_pipeline.discovery.matrix import (
    ALL,
    BENCHMARK,
    INSUFFICIENT,
    OK,
    UNLABELLED,
    CellRule,
    performance_matrix,
    pivot,
)
from trading_pipeline.discovery.results import FoldResult, StudyResult, collect
from trading_pipeline.discovery.robustness import (
    DeflatedSharpe,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe,
)
from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import TuneSpec, WalkForward, make_spec, tune
from trading_pipeline.regimes.synthetic import synthetic_bars, truth
from trading_pipeline.strategies.registry import get_family

SCRIPT = (("sideways", 1500), ("bull", 1500), ("bear", 1500), ("bull", 1500), ("bear", 1500))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[StudyResult, pl.DataFrame]:
    bars = synthetic_bars(SCRIPT, seed=3)
    fam = get_family("sma_cross")
    tmp: Path = tmp_path_factory.mktemp("matrix")
    storage = open_storage(None, data_dir=tmp)
    spec = make_spec(bars, fam, series="spot-SYN-1h", interval="1h", walk=WalkForward(folds=3))
    tune(bars, fam, spec=spec, storage=storage, n_trials=12, seed=0)
    labels = pl.DataFrame({"open_time": bars["open_time"], "regime": truth(SCRIPT)})
    return collect(bars, fam, spec=spec, storage=storage), labels


def test_rows_per_strategy_and_regime_with_buy_and_hold(tuned) -> None:
    res, labels = tuned
    m = performance_matrix([res], labels)
    assert set(m["strategy"]) == {"sma_cross", BENCHMARK}
    oos_regimes = set(labels.filter(pl.col("open_time").is_in(res.open_time.implode()))["regime"])
    for strategy in ("sma_cross", BENCHMARK):
        rows = m.filter(pl.col("strategy") == strategy)
        assert set(rows["regime"]) == oos_regimes | {ALL}
        per = rows.filter(pl.col("regime") != ALL)
        whole = rows.filter(pl.col("regime") == ALL).row(0, named=True)
        # the regimes partition the out-of-sample bars, and the positions opened in them
        assert per["bars"].sum() == whole["bars"] == res.returns.size
        assert per["trades"].sum() == whole["trades"]
        assert ((rows["exposure"] >= 0) & (rows["exposure"] <= 1)).all()
        assert ((rows["max_drawdown"] >= 0) & (rows["max_drawdown"] <= 1)).all()
    whole_strategy = m.filter((pl.col("strategy") == "sma_cross") & (pl.col("regime") == ALL))
    assert whole_strategy["sharpe"][0] == pytest.approx(res.metrics["sharpe"])
    assert whole_strategy["total_return"][0] == pytest.approx(res.metrics["total_return"])


def test_buy_and_hold_rows_follow_the_scripted_market(tuned) -> None:
    res, labels = tuned
    m = performance_matrix([res], {"spot-SYN-1h": labels})
    bh = {r["regime"]: r for r in m.filter(pl.col("strategy") == BENCHMARK).iter_rows(named=True)}
    assert bh["bull"]["total_return"] > 0 > bh["bear"]["total_return"]
    assert bh["bull"]["sharpe"] > bh["bear"]["sharpe"]
    assert bh[ALL]["total_return"] == pytest.approx(res.bh_metrics["total_return"])
    assert bh[ALL]["exposure"] > 0.99
    # the regime return compounds that regime's bars only; a bar belongs to the regime
    # labelled at the bar before it (a label is known at its bar's close)
    previous = labels.with_columns(pl.col("regime").shift(1))
    mask = previous.filter(pl.col("open_time").is_in(res.open_time.implode()))["regime"] == "bull"
    expected = float(np.prod(1 + res.bh_returns[mask.to_numpy()]) - 1)
    assert bh["bull"]["total_return"] == pytest.approx(expected)


def test_unlabelled_bars_and_pivot(tuned) -> None:
    res, labels = tuned
    m = performance_matrix([res], labels.head(100))  # labels end before the OOS bars
    assert set(m["regime"]) == {ALL, UNLABELLED}
    wide = pivot(performance_matrix([res], labels), "sharpe")
    assert wide.height == 2 and {"bull", "bear", ALL} <= set(wide.columns)


def _result(family: str, returns: np.ndarray, entries: np.ndarray) -> StudyResult:
    """A hand-made out-of-sample result on hourly bars from 2021-01-01 (no Optuna)."""
    n = returns.size
    open_time = pl.datetime_range(
        datetime(2021, 1, 1, tzinfo=UTC),
        datetime(2021, 1, 1, tzinfo=UTC) + timedelta(hours=n - 1),
        "1h",
        eager=True,
    ).alias("open_time")
    spec = TuneSpec(family, 1, "spot-X-1h", "1h", WalkForward(folds=2), CostModel(), 1e3, n, "x")
    metrics = metrics_from_returns(returns, bars_per_year=8760, entries=entries)
    return StudyResult(
        spec=spec,
        folds=[FoldResult(0, (0, 0), (0, n), {}, 0.0, 1, {})],
        open_time=open_time,
        returns=returns,
        in_position=np.ones(n, dtype=bool),
        entries=entries,
        metrics=metrics,
        bh_returns=returns,
        bh_metrics=metrics,
        bh_in_position=np.ones(n, dtype=bool),
        bh_entries=np.zeros(n, dtype=bool),
        dsr=DeflatedSharpe(0.0, 0.0, 0.5, 1, n),
        trial_variance=0.0,
        pbo=None,
        consistency=0.5,
        n_trials=1,
        trials=pl.DataFrame(),
    )


def test_a_label_governs_the_next_bars_return_never_its_own() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0.0, 0.01, 3000)
    res = _result("s", r, np.ones(r.size, dtype=bool))
    # a labeller that looks at its own bar's return: "up" when that bar rose. Filed under its
    # own bar (the old alignment) every "up" bar would be a winner: lookahead.
    own = np.where(r > 0, "up", "down")
    labels = pl.DataFrame({"open_time": res.open_time, "regime": own})
    m = performance_matrix([res], labels).filter(pl.col("strategy") == "s")
    up = m.filter(pl.col("regime") == "up").row(0, named=True)
    governed = np.concatenate([[False], own[:-1] == "up"])  # label of bar t-1 → bar t
    assert up["bars"] == int(governed.sum())
    assert up["total_return"] == pytest.approx(float(np.prod(1 + r[governed]) - 1))
    assert up["total_return"] != pytest.approx(float(np.prod(1 + r[own == "up"]) - 1))
    assert abs(up["sharpe"]) < 3  # noise stays noise, not a Sharpe ratio in the hundreds
    # the first bar has no earlier label in the frame
    assert set(m["regime"]) == {ALL, "up", "down", UNLABELLED}


def test_thin_cells_are_insufficient_and_never_a_regimes_best() -> None:
    rng = np.random.default_rng(2)
    n = 2000
    regime = np.where(np.arange(n) < 1700, "bull", "bear")  # bear: 300 bars (< 500)
    labels_at = np.concatenate([regime[1:], regime[-1:]])  # so that bar t is governed by regime[t]
    good = 0.002 + rng.normal(0.0, 0.01, n)
    lucky = 0.004 + rng.normal(0.0, 0.01, n)  # better, but on 3 positions
    few = np.zeros(n, dtype=bool)
    few[[10, 900, 1800]] = True
    results = [
        _result("good", good, rng.random(n) < 0.05),
        _result("lucky", lucky, few),
    ]
    labels = pl.DataFrame({"open_time": results[0].open_time, "regime": labels_at})
    m = performance_matrix(results, labels, rule=CellRule(min_bars=500, min_trades=10))
    status = {(r["strategy"], r["regime"]): r["status"] for r in m.iter_rows(named=True)}
    assert status[("good", "bull")] == OK and status[("good", ALL)] == OK
    assert status[("lucky", "bull")] == INSUFFICIENT  # 2 trades
    assert status[("good", "bear")] == INSUFFICIENT  # 300 bars
    assert status[(BENCHMARK, "bull")] == "benchmark"
    best = {r["regime"]: r for r in best_per_regime(m).iter_rows(named=True)}
    assert best["bull"]["strategy"] == "good" and best[ALL]["strategy"] == "good"
    lucky_bull = m.filter((pl.col("strategy") == "lucky") & (pl.col("regime") == "bull"))
    assert lucky_bull["sharpe"][0] > best["bull"]["sharpe"]  # the higher Sharpe is not chosen
    assert best["bear"]["strategy"] is None and best["bear"]["status"] == INSUFFICIENT
    # every cell is deflated for the strategies compared in its regime
    bull = m.filter((pl.col("regime") == "bull") & (pl.col("strategy") != BENCHMARK))
    srs = [sharpe(x.returns[1:1700]) for x in results]
    bench = expected_max_sharpe(float(np.var(srs, ddof=1)), 2)
    assert bench > 0
    good_bull = bull.filter(pl.col("strategy") == "good").row(0, named=True)
    alone = probabilistic_sharpe_ratio(srs[0], n=good_bull["bars"])
    assert good_bull["bars"] == 1699
    assert 0.0 <= good_bull["dsr_probability"] < alone
    assert best["bull"]["dsr_probability"] == good_bull["dsr_probability"]
