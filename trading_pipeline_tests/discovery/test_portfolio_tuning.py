"""Portfolio families through discovery's own path: Optuna walk-forward tuning on a universe
frame, the continuous out-of-sample account, deflation over every trial, ranking and matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.portfolio import BASKET
from trading_pipeline.discovery.matrix import BENCHMARK, performance_matrix
from trading_pipeline.discovery.portfolio_study import oos_benchmarks, tune_universe
from trading_pipeline.discovery.ranking import rank
from trading_pipeline.discovery.results import StudyResult, collect
from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune
from trading_pipeline.market.candles import read_candle_file
from trading_pipeline.strategies.registry import PORTFOLIO_FAMILIES, get_family
from trading_pipeline.strategies.universe import universe_frame, universe_key
from trading_pipeline_tests.fakes.bars import make_bars

COINS = ("AAA", "BBB", "CCC")
SERIES = universe_key(list(COINS), "1h")
WALK = WalkForward(folds=3)
COSTS = CostModel(fee=0.001, slippage_bps=2.0)


def universe(n: int = 4000) -> pl.DataFrame:
    return universe_frame(
        {
            c: make_bars(n, seed=20 + i, vol=0.008 + 0.004 * i, drift=0.0002 * (1 - i))
            for i, c in enumerate(COINS)
        }
    )


def tuned(name: str, frame: pl.DataFrame, trials: int = 6) -> StudyResult:
    fam = get_family(name)
    spec = make_spec(frame, fam, series=SERIES, interval="1h", walk=WALK, costs=COSTS)
    storage = optuna.storages.InMemoryStorage()
    tune(frame, fam, spec=spec, storage=storage, n_trials=trials, seed=0)
    return collect(frame, fam, spec=spec, storage=storage)


@pytest.fixture(scope="module")
def results() -> dict[str, StudyResult]:
    frame = universe()
    return {name: tuned(name, frame) for name in sorted(PORTFOLIO_FAMILIES)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PORTFOLIO_FAMILIES))
def test_small_walk_forward_tune(results: dict[str, StudyResult], name: str) -> None:
    r = results[name]
    folds = WALK.split(4000)
    assert r.spec.series == SERIES and r.spec.family == name
    assert r.n_trials == 6 * len(folds) and r.dsr.n_trials == r.n_trials  # deflated for all
    assert r.trials.height == r.n_trials  # every trial judged on its fold's test window
    oos = folds[-1].test_stop - folds[0].test_start
    assert r.returns.size == oos == r.bh_returns.size == r.dsr.n_bars
    # the account starts from cash at the first test bar: its first window is that window
    # traded alone from cash (the flat-restart figure); later windows carry holdings over
    first = r.folds[0]
    n0 = first.test[1] - first.test[0]
    assert r.flat_restart_returns is not None
    np.testing.assert_allclose(r.returns[:n0], r.flat_restart_returns[:n0], rtol=1e-12)
    growth = float(np.prod(1.0 + r.returns) - 1.0)
    assert r.metrics["total_return"] == pytest.approx(growth)
    assert 0.0 <= r.metrics["max_drawdown"] < 1.0
    assert 0.0 <= r.dsr.probability <= 1.0
    summary = r.summary()
    assert summary["oos_account"].startswith("continuous")
    assert summary["best_params"] == r.folds[-1].params


@pytest.mark.slow
def test_ranking_matrix_and_benchmarks(results: dict[str, StudyResult]) -> None:
    frame = universe()
    table = rank(list(results.values()))
    assert sorted(table["strategy"].to_list()) == sorted(PORTFOLIO_FAMILIES)
    # deflated per series over every trial of every family tried on the universe
    assert set(table["series"].to_list()) == {SERIES}
    assert table["series_trials"].to_list() == [sum(r.n_trials for r in results.values())] * 3
    matrix = performance_matrix(list(results.values()), {})
    assert BENCHMARK in matrix["strategy"].to_list()
    assert set(matrix["regime"].to_list()) >= {"all"}
    r = results["xs_momentum"]
    bench = oos_benchmarks(frame, r)
    assert set(bench) == {*COINS, BASKET}
    # the study's benchmark is the equal-weight basket over the same bars
    assert bench[BASKET].metrics["total_return"] == pytest.approx(r.bh_metrics["total_return"])
    for run in bench.values():
        assert run.equity.size == r.returns.size


@pytest.mark.slow
def test_test_windows_never_reach_the_tuner() -> None:
    """Moving every bar of the last test window changes nothing chosen before it."""
    frame = universe(3000)
    folds = WALK.split(3000)
    last = folds[-1]
    cols = [c for c in frame.columns if c != "open_time"]
    idx = pl.int_range(pl.len())
    changed = frame.with_columns(
        pl.when(idx >= last.test_start).then(pl.col(c) * 1.5).otherwise(pl.col(c)).alias(c)
        for c in cols
    )
    a = tuned("xs_momentum", frame, trials=4)
    b = tuned("xs_momentum", changed, trials=4)
    assert [f.params for f in a.folds] == [f.params for f in b.folds]
    assert a.folds[-1].train_value == b.folds[-1].train_value
    assert a.returns[-1] != b.returns[-1]  # the test window itself did change


REAL = {
    "BTC": "Roshan7869-algotrading/freqtrade_binance_spot_1h/BTC_USDT-1h.feather",
    "ETH": "Roshan7869-algotrading/freqtrade_binance_spot_1h/ETH_USDT-1h.feather",
    "BNB": "wuTribe-freqtrade/freqtrade_binance_spot_1h/BNB_USDT-1h.feather",
}


@pytest.mark.slow
@pytest.mark.real_data
def test_real_universe_gated_tuned_and_judged(real_data: Path, tmp_path: Path) -> None:
    series = {}
    for coin, rel in REAL.items():
        bars = read_candle_file(real_data / rel)
        series[coin] = bars.filter(pl.col("open_time") >= pl.datetime(2023, 1, 1, time_zone="UTC"))
    frame = universe_frame(series)
    assert frame.height > 10_000  # 2023-01 → 2024-11, hourly, joined on open time
    fam = PORTFOLIO_FAMILIES["trend_vol"]
    storage = optuna.storages.InMemoryStorage()
    r = tune_universe(
        frame,
        fam,
        series=universe_key(list(REAL), "1h"),
        interval="1h",
        storage=storage,
        n_trials=4,
        walk=WALK,
        audit_cache=tmp_path,
    )
    assert list(tmp_path.iterdir())  # the clean audit verdict was cached
    assert r.n_trials == 12 and r.dsr.n_trials == 12
    bench = oos_benchmarks(frame, r)
    assert set(bench) == {"BTC", "ETH", "BNB", BASKET}
    assert np.isfinite(r.metrics["sharpe"]) and np.isfinite(bench[BASKET].metrics["sharpe"])
