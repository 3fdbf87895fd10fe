"""Statistics that stop a lucky backtest from being called a good strategy.

* Probabilistic Sharpe ratio (Bailey & López de Prado, 2012): the probability that the true
  Sharpe ratio exceeds a benchmark, given the sample length, skewness and kurtosis.
* Deflated Sharpe ratio (Bailey & López de Prado, 2014): the PSR against the Sharpe ratio the
  best of ``n_trials`` unskilled strategies would reach by luck alone.
* Probability of backtest overfitting by combinatorially symmetric cross-validation
  (Bailey, Borwein, López de Prado & Zhu, 2017).

All Sharpe ratios here are per bar (not annualised): the formulas are in sample units.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

EULER_GAMMA = 0.5772156649015329


def sharpe(returns: ArrayLike) -> float:
    """Per-bar Sharpe ratio of simple returns (0 when the returns do not vary)."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return 0.0
    sd = r.std(ddof=1)
    return float(r.mean() / sd) if sd > 0 else 0.0


def probabilistic_sharpe_ratio(
    sr: float, *, n: int, skew: float = 0.0, kurtosis: float = 3.0, sr_benchmark: float = 0.0
) -> float:
    """P(true SR > ``sr_benchmark``) for an observed per-bar ``sr`` over ``n`` bars.

    ``kurtosis`` is the plain (not excess) kurtosis: 3 for normal returns.
    """
    if n < 2:
        return 0.0
    denom = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if denom <= 0:
        return 0.0
    z = (sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(denom)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(sr_variance: float, n_trials: int) -> float:
    """The Sharpe ratio the best of ``n_trials`` skill-less trials reaches by luck (per bar)."""
    if n_trials < 2 or sr_variance <= 0:
        return 0.0
    n = float(n_trials)
    a = stats.norm.ppf(1.0 - 1.0 / n)
    b = stats.norm.ppf(1.0 - 1.0 / (n * math.e))
    return float(math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * a + EULER_GAMMA * b))


@dataclass(frozen=True)
class DeflatedSharpe:
    """The winner's Sharpe ratio judged against the number of strategies tried."""

    sharpe: float  # per bar
    benchmark: float  # expected maximum Sharpe of the trials under no skill (per bar)
    probability: float  # P(true SR > benchmark): the deflated Sharpe ratio
    n_trials: int
    n_bars: int

    def significant(self, level: float = 0.95) -> bool:
        return self.probability >= level


def deflated_sharpe_ratio(
    returns: ArrayLike, *, trial_sharpes: ArrayLike, n_trials: int | None = None
) -> DeflatedSharpe:
    """Deflate the Sharpe ratio of ``returns`` (the selected strategy's out-of-sample bars).

    ``trial_sharpes`` are the per-bar Sharpe ratios of every trial tried (their variance sets
    the luck benchmark); ``n_trials`` defaults to their count (pass the effective number of
    independent trials when it is known to be smaller).
    """
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    trials = np.asarray(trial_sharpes, dtype=float)
    trials = trials[np.isfinite(trials)]
    n_tr = int(n_trials if n_trials is not None else trials.size)
    sr = sharpe(r)
    var = float(trials.var(ddof=1)) if trials.size > 1 else 0.0
    bench = expected_max_sharpe(var, n_tr)
    skew = float(stats.skew(r)) if r.size > 2 else 0.0
    kurt = float(stats.kurtosis(r, fisher=False)) if r.size > 3 else 3.0
    if not math.isfinite(skew) or not math.isfinite(kurt):
        skew, kurt = 0.0, 3.0
    p = probabilistic_sharpe_ratio(sr, n=r.size, skew=skew, kurtosis=kurt, sr_benchmark=bench)
    return DeflatedSharpe(
        sharpe=sr, benchmark=bench, probability=p, n_trials=n_tr, n_bars=int(r.size)
    )


@dataclass(frozen=True)
class PBOResult:
    """Probability of backtest overfitting and the logits it was computed from."""

    pbo: float
    logits: np.ndarray
    n_splits: int
    n_combinations: int


def probability_of_backtest_overfitting(
    returns: ArrayLike, *, n_splits: int = 10, max_combinations: int = 2000, seed: int = 0
) -> PBOResult:
    """CSCV over a ``bars × strategies`` matrix of per-bar returns.

    The bars are cut into ``n_splits`` (even) contiguous blocks; for every half of the blocks
    taken as in-sample, the in-sample best strategy's out-of-sample rank is recorded. PBO is
    the share of splits where that strategy ranks in the bottom half out of sample.
    """
    m = np.asarray(returns, dtype=float)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError("PBO needs a bars × strategies matrix with at least two strategies")
    if n_splits < 2 or n_splits % 2:
        raise ValueError("n_splits must be an even number ≥ 2")
    if m.shape[0] < n_splits * 2:
        raise ValueError(f"PBO needs at least {n_splits * 2} bars, got {m.shape[0]}")
    m = np.nan_to_num(m, nan=0.0)
    blocks = np.array_split(np.arange(m.shape[0]), n_splits)
    combos = list(itertools.combinations(range(n_splits), n_splits // 2))
    if len(combos) > max_combinations:
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(combos), size=max_combinations, replace=False)
        combos = [combos[i] for i in sorted(pick)]
    n_strat = m.shape[1]
    logits = np.empty(len(combos))
    for i, is_blocks in enumerate(combos):
        is_idx = np.concatenate([blocks[b] for b in is_blocks])
        oos_idx = np.concatenate([blocks[b] for b in range(n_splits) if b not in is_blocks])
        best = int(np.argmax(_column_sharpes(m[is_idx])))
        oos = _column_sharpes(m[oos_idx])
        rank = float(stats.rankdata(oos)[best])  # 1 = worst … n_strat = best
        omega = rank / (n_strat + 1.0)
        logits[i] = math.log(omega / (1.0 - omega))
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        n_splits=n_splits,
        n_combinations=len(combos),
    )


def _column_sharpes(m: np.ndarray) -> np.ndarray:
    sd = m.std(axis=0, ddof=1)
    mean = m.mean(axis=0)
    out = np.zeros(m.shape[1])
    ok = sd > 0
    out[ok] = mean[ok] / sd[ok]
    return out
