"""The robustness statistics: known values, and no significance found in pure noise."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from trading_pipeline.discovery.robustness import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe,
)
from trading_pipeline.discovery.splits import walk_forward


def test_psr_matches_the_closed_form_for_normal_returns() -> None:
    # SR 0.1 per bar over 101 bars, normal: z = 0.1 * 10 / sqrt(1 + 2/4 * 0.01)
    expected = stats.norm.cdf(0.1 * 10 / math.sqrt(1 + 0.5 * 0.01))
    assert probabilistic_sharpe_ratio(0.1, n=101) == pytest.approx(expected, rel=1e-12)
    assert probabilistic_sharpe_ratio(0.0, n=101) == pytest.approx(0.5)


def test_negative_skew_and_fat_tails_lower_confidence() -> None:
    base = probabilistic_sharpe_ratio(0.08, n=500)
    assert probabilistic_sharpe_ratio(0.08, n=500, skew=-1.5, kurtosis=9.0) < base


def test_expected_max_sharpe_grows_with_the_number_of_trials() -> None:
    values = [expected_max_sharpe(0.01, n) for n in (2, 10, 100, 1000, 10000)]
    assert all(a < b for a, b in itertools.pairwise(values))
    # the closed form for 1000 trials of unit variance
    n = 1000
    exact = 0.4227843350984671 * stats.norm.ppf(1 - 1 / n) + 0.5772156649015329 * stats.norm.ppf(
        1 - 1 / (n * math.e)
    )
    assert expected_max_sharpe(1.0, n) == pytest.approx(exact)


def test_best_of_many_random_walk_strategies_is_not_significant() -> None:
    rng = np.random.default_rng(7)
    n_bars, n_trials = 2000, 1000
    trials = rng.normal(0.0, 0.01, size=(n_bars, n_trials))  # skill-less strategies
    srs = np.array([sharpe(trials[:, j]) for j in range(n_trials)])
    best = int(np.argmax(srs))
    naive = probabilistic_sharpe_ratio(srs[best], n=n_bars)
    dsr = deflated_sharpe_ratio(trials[:, best], trial_sharpes=srs)
    assert naive > 0.99  # the naive view calls the lucky winner significant …
    assert not dsr.significant()  # … the deflated one does not
    assert dsr.probability < 0.9


def test_a_real_edge_survives_deflation() -> None:
    rng = np.random.default_rng(3)
    n_bars, n_trials = 3000, 200
    trials = rng.normal(0.0, 0.01, size=(n_bars, n_trials))
    trials[:, 0] += 0.0015  # Sharpe ≈ 0.15 per bar: a genuine edge
    srs = np.array([sharpe(trials[:, j]) for j in range(n_trials)])
    dsr = deflated_sharpe_ratio(trials[:, 0], trial_sharpes=srs)
    assert dsr.significant()


def test_pbo_is_high_for_noise_and_low_for_a_persistent_edge() -> None:
    # for skill-less strategies the in-sample winner is a coin flip out of sample: PBO ≈ 0.5
    pbos = [
        probability_of_backtest_overfitting(
            np.random.default_rng(seed).normal(0, 0.01, size=(1600, 40)), n_splits=8
        ).pbo
        for seed in range(6)
    ]
    assert 0.3 < float(np.mean(pbos)) < 0.7
    noise = np.random.default_rng(11).normal(0, 0.01, size=(1600, 40))
    edge = noise.copy()
    edge[:, 5] += 0.004
    result = probability_of_backtest_overfitting(edge, n_splits=8)
    assert result.pbo < 0.05
    assert result.n_combinations == 70


def test_pbo_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match="two strategies"):
        probability_of_backtest_overfitting(np.zeros((100, 1)))
    with pytest.raises(ValueError, match="even"):
        probability_of_backtest_overfitting(np.zeros((100, 3)), n_splits=5)


def test_walk_forward_test_windows_tile_the_end_without_overlap() -> None:
    folds = walk_forward(1000, folds=4, embargo=5)
    assert [f.index for f in folds] == [0, 1, 2, 3]
    assert folds[-1].test_stop == 1000
    for a, b in itertools.pairwise(folds):
        assert a.test_stop == b.test_start
    for f in folds:
        assert f.train_stop + 5 == f.test_start
        assert f.train_stop - f.train_start == folds[0].train_stop - folds[0].train_start
    anchored = walk_forward(1000, folds=4, anchored=True)
    assert all(f.train_start == 0 for f in anchored)
    with pytest.raises(ValueError, match="too few"):
        walk_forward(5, folds=4)


def test_the_papers_numerical_example() -> None:
    # Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", numerical example: 100
    # trials whose annualised Sharpe ratios vary by 1/2, the best one's annualised SR 2.5 over
    # five years of daily returns (T = 1250, 250 a year), skewness -3, kurtosis 10. The paper
    # finds a luck benchmark of 0.1132 per day and a DSR of 0.9004 (significant at 90% only).
    per_year = 250
    sr0 = expected_max_sharpe(0.5 / per_year, 100)
    assert sr0 == pytest.approx(0.1132, abs=1e-3)
    dsr = probabilistic_sharpe_ratio(
        2.5 / math.sqrt(per_year), n=1250, skew=-3.0, kurtosis=10.0, sr_benchmark=sr0
    )
    assert dsr == pytest.approx(0.9004, abs=1e-3)
