"""Pure noise against the ranking's robust rule: how often a noise-only family set passes."""

from __future__ import annotations

import numpy as np
import pytest

from trading_pipeline.discovery.calibration import (
    FAMILIES,
    FOLDS,
    NOISE_MAX_PBO,
    SPLITS,
    TRIALS,
    calibrate_max_pbo,
    family_statistics,
    noise_pass_rates,
)
from trading_pipeline.discovery.ranking import RankingRule
from trading_pipeline.discovery.results import deflate, pooled_variance
from trading_pipeline.discovery.robustness import probability_of_backtest_overfitting, sharpe


def test_a_noise_only_family_set_is_ranked_robust_at_most_one_time_in_ten() -> None:
    rule = RankingRule()
    assert rule.max_pbo == NOISE_MAX_PBO
    rates = noise_pass_rates(
        max_pbo=rule.max_pbo,
        dsr_level=rule.dsr_level,
        min_consistency=rule.min_consistency,
        n_sets=800,
        seed=0,
    )
    old_pbo = float(np.mean(rates.pbo_minima <= 0.5))
    print(
        f"\nnoise-only family sets ({rates.n_sets} sets of {FAMILIES} families × {FOLDS} folds "
        f"× {TRIALS} trials, {SPLITS} CSCV splits) passing at least one family: "
        f"robust rule {rates.robust:.1%}; alone: PBO ≤ {rule.max_pbo} {rates.pbo:.1%} "
        f"(PBO ≤ 0.5 {old_pbo:.1%}), DSR ≥ {rule.dsr_level} {rates.dsr:.1%}, "
        f"consistency {rates.consistency:.1%}, beats buy-and-hold {rates.beats_buy_and_hold:.1%}"
    )
    assert rates.robust <= 0.10
    assert rates.pbo <= 0.10  # the PBO gate means something on its own too
    assert old_pbo > 0.5  # the old threshold let most noise sets through


def test_the_simulation_computes_what_the_pipeline_computes() -> None:
    # real noise bars, turned into the block moments the simulation draws directly
    rng = np.random.default_rng(4)
    sets, families, folds, splits, trials, block = 2, 3, 4, 8, 6, 40
    bars = rng.normal(0.0, 0.01, size=(sets, families, folds, splits, block, trials))
    sums = bars.sum(axis=4)
    squares = (bars * bars).sum(axis=4)
    got = family_statistics(sums, squares, block)
    for s in range(sets):
        fold_sharpes = [
            [sharpe(bars[s, f, k, :, :, j].ravel()) for j in range(trials)]
            for f in range(families)
            for k in range(folds)
        ]
        variance = pooled_variance(fold_sharpes)
        for f in range(families):
            windows = [bars[s, f, k].reshape(splits * block, trials) for k in range(folds)]
            logits = np.concatenate(
                [probability_of_backtest_overfitting(w, n_splits=splits).logits for w in windows]
            )
            assert got["pbo"][s, f] == pytest.approx(float(np.mean(logits <= 0.0)))
            oos = np.concatenate([w[:, 0] for w in windows])  # trial 0: the chosen one
            d = deflate(oos, variance, families * folds * trials)
            assert got["sharpe"][s, f] == pytest.approx(d.sharpe, rel=1e-9)
            assert got["benchmark"][s, f] == pytest.approx(d.benchmark, rel=1e-9)
            assert got["dsr"][s, f] == pytest.approx(d.probability, abs=0.02)  # normal moments
            positive = np.mean([sharpe(w[:, 0]) > 0 for w in windows])
            assert got["consistency"][s, f] == pytest.approx(positive)


def test_calibration_returns_the_largest_threshold_within_the_target() -> None:
    threshold, rates = calibrate_max_pbo(0.10, n_sets=200, trials=6, seed=2)
    assert rates.pbo <= 0.10
    above = noise_pass_rates(max_pbo=threshold + 0.01, n_sets=200, trials=6, seed=2)
    assert above.pbo > 0.10
