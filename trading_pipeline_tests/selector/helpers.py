"""Synthetic discovery results for the selector tests: seeded bars and StudyResults built
from them (no Optuna), whose per-bar out-of-sample returns depend on the market, so the state
carries some information about which candidate wins a day."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.discovery.evaluate import metrics_from_returns
from trading_pipeline.discovery.results import FoldResult, StudyResult
from trading_pipeline.discovery.robustness import DeflatedSharpe
from trading_pipeline.discovery.tuning import TuneSpec, WalkForward, fingerprint
from trading_pipeline_tests.fakes.bars import START_2021, make_bars

SERIES = ("spot-BTCUSDT-1h", "spot-ETHUSDT-1h", "spot-BNBUSDT-1h")
BARS_PER_YEAR = 24 * 365.0


def market(n_bars: int = 24 * 160, seed: int = 1) -> dict[str, pl.DataFrame]:
    """Three hourly random walks of ``n_bars`` bars from 2021-01-01 UTC."""
    return {
        s: make_bars(n_bars, seed=seed + i, vol=0.008, trend="walk_traded", start=START_2021)
        for i, s in enumerate(SERIES)
    }


def study_result(
    family: str,
    series: str,
    bars: pl.DataFrame,
    returns: np.ndarray,
    *,
    oos_start: int,
    params: dict[str, Any] | None = None,
    trades: int = 40,
) -> StudyResult:
    """A StudyResult whose out-of-sample bars are ``bars[oos_start:]`` with ``returns``."""
    n = bars.height
    r = np.asarray(returns, dtype=float)[oos_start:]
    close = bars.get_column("close").to_numpy()
    bh = np.concatenate([[0.0], close[1:] / close[:-1] - 1.0])[oos_start:]
    spec = TuneSpec(
        family=family,
        family_version=1,
        series=series,
        interval="1h",
        walk=WalkForward(folds=2),
        costs=CostModel(),
        cash=1000.0,
        n_bars=n,
        data_fingerprint=fingerprint(bars),
    )
    metrics = metrics_from_returns(r, bars_per_year=BARS_PER_YEAR)
    metrics["trades"] = float(trades)
    bh_metrics = metrics_from_returns(bh, bars_per_year=BARS_PER_YEAR)
    fold = FoldResult(0, (0, oos_start), (oos_start, n), dict(params or {"window": 5}), 0.1, 10, {})
    in_pos = np.ones(r.size, dtype=bool)
    return StudyResult(
        spec=spec,
        folds=[fold],
        open_time=bars.get_column("open_time")[oos_start:],
        returns=r,
        in_position=in_pos,
        entries=np.zeros(r.size, dtype=bool),
        metrics=metrics,
        bh_returns=bh,
        bh_metrics=bh_metrics,
        bh_in_position=in_pos,
        bh_entries=np.zeros(r.size, dtype=bool),
        dsr=DeflatedSharpe(0.01, 0.0, 0.5, 10, r.size),
        trial_variance=0.0001,
        pbo=None,
        consistency=0.5,
        n_trials=10,
        trials=pl.DataFrame(),
    )


def candidates(
    bars: dict[str, pl.DataFrame], *, oos_start: int = 24 * 40, seed: int = 0
) -> list[StudyResult]:
    """Four candidates: trend followers on BTC and ETH (long after a rising day), a momentum
    strategy on BNB and a mean-reverting MACD on BTC (long after a falling day)."""
    out = []
    specs = [
        ("sma_cross", SERIES[0], 1.0),
        ("sma_cross", SERIES[1], 1.0),
        ("momentum", SERIES[2], 1.0),
        ("macd", SERIES[0], -1.0),
    ]
    for k, (family, series, sign) in enumerate(specs):
        rng = np.random.default_rng([seed, k])  # a bar's cost noise never depends on the length
        close = bars[series].get_column("close").to_numpy()
        r = np.concatenate([[0.0], close[1:] / close[:-1] - 1.0])
        past = np.concatenate([np.zeros(24), np.log(close[24:] / close[:-24])])
        long = (sign * np.concatenate([[0.0], past[:-1]]) > 0).astype(float)
        net = long * r - 0.0002 * rng.random(r.size)
        out.append(study_result(family, series, bars[series], net, oos_start=oos_start))
    return out
