"""The strategy × regime matrix: out-of-sample bars split by regime, buy-and-hold beside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_pipeline.discovery.matrix import ALL, BENCHMARK, UNLABELLED, performance_matrix, pivot
from trading_pipeline.discovery.results import StudyResult, collect
from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
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
    # the regime return compounds that regime's bars only
    mask = labels.filter(pl.col("open_time").is_in(res.open_time.implode()))["regime"] == "bull"
    expected = float(np.prod(1 + res.bh_returns[mask.to_numpy()]) - 1)
    assert bh["bull"]["total_return"] == pytest.approx(expected)


def test_unlabelled_bars_and_pivot(tuned) -> None:
    res, labels = tuned
    m = performance_matrix([res], labels.head(100))  # labels end before the OOS bars
    assert set(m["regime"]) == {ALL, UNLABELLED}
    wide = pivot(performance_matrix([res], labels), "sharpe")
    assert wide.height == 2 and {"bull", "bear", ALL} <= set(wide.columns)
