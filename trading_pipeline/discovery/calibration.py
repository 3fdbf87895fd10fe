"""How often pure noise passes the ranking's robustness rule, and the PBO threshold that keeps
it rare.

A *noise-only family set* is what discovery would rank on one series if no strategy had any
skill: ``families`` families, each tuned walk-forward over ``folds`` folds of ``trials``
trials, every trial's test-window returns i.i.d. normal noise. For each family, as
:func:`~.results.collect` and :func:`~.ranking.rank` do:

* PBO by CSCV over each fold's (test bars × trials) matrix cut into ``splits`` blocks, the
  logits of every fold pooled;
* the out-of-sample returns: the fold-chosen trial's test windows concatenated (chosen on the
  train window, which noise makes independent of the test window: any trial will do);
* the deflated Sharpe probability against every trial of every family on the series, with the
  variance of all their test-window Sharpe ratios about their fold's mean (the paper's);
* consistency: the share of folds with a positive test Sharpe ratio;
* buy-and-hold: the market's own noise over the same bars.

The set *passes* a gate when at least one of its families does. :func:`noise_pass_rates`
measures the rate of each gate and of the whole rule over ``n_sets`` seeded sets, vectorised
(each block's sum and sum of squares drawn from their exact normal-theory laws, so no bar is
simulated); :func:`calibrate_max_pbo` picks the largest PBO threshold whose noise pass rate,
PBO alone, stays at or under the target.

The shipped threshold :data:`NOISE_MAX_PBO` is the largest multiple of 0.01 that keeps PBO
alone at or under 10% for the pipeline's shape (7 families, 4 folds, 8 CSCV splits) at every
trial count measured: ``calibrate_max_pbo(0.10, trials=T)`` gave 0.30, 0.25, 0.27, 0.30 and 0.32
for T = 5, 10, 20, 50 and 100 (2,000-4,000 seeded sets each). PBO's noise distribution
narrows with more trials; with fewer *effective* trials (trials that are near copies of one
another) it widens, so a study of near-identical parameter sets is judged less strictly than
this says.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from trading_pipeline.discovery.robustness import expected_max_sharpe

NOISE_MAX_PBO = 0.25
"""PBO threshold of the ranking's robust rule: a noise-only family set of the pipeline's size
passes it (PBO alone) in at most 10% of seeded simulations (the old 0.5 passed ~99%)."""

FAMILIES = 7  # the strategy families discovery tunes on each series
FOLDS = 4
TRIALS = 20  # finished trials per fold (the strategy_results asset's default)
SPLITS = 8  # CSCV blocks per fold (results.collect's pbo_splits)


@dataclass(frozen=True)
class NoiseRates:
    """Share of noise-only family sets in which at least one family passes each gate."""

    n_sets: int
    pbo: float  # PBO ≤ max_pbo alone
    dsr: float  # deflated Sharpe probability ≥ dsr_level alone
    consistency: float  # positive test Sharpe in ≥ min_consistency of the folds alone
    beats_buy_and_hold: float  # out-of-sample Sharpe above buy-and-hold's alone
    robust: float  # every gate together: the rank's ``robust``
    pbo_minima: np.ndarray  # per set, the lowest family PBO (for calibration)


def _cscv_masks(splits: int) -> np.ndarray:
    combos = list(itertools.combinations(range(splits), splits // 2))
    masks = np.zeros((len(combos), splits))
    for i, c in enumerate(combos):
        masks[i, list(c)] = 1.0
    return masks


def _sharpe(total: np.ndarray, squares: np.ndarray, n: float) -> np.ndarray:
    """Per-bar Sharpe ratio (ddof 1) from a sample's sum and sum of squares."""
    mean = total / n
    var = np.maximum((squares - n * mean * mean) / (n - 1.0), 1e-300)
    return np.asarray(mean / np.sqrt(var))


def _order_score(total: np.ndarray, squares: np.ndarray, n: float) -> np.ndarray:
    """A number ordered as the Sharpe ratio of samples of ``n`` bars (for ranking only)."""
    centred = squares - total * total / n
    np.maximum(centred, 1e-300, out=centred)
    np.sqrt(centred, out=centred)
    return np.divide(total, centred, out=centred)


def cscv_pbo(
    sums: np.ndarray, squares: np.ndarray, block: int, masks: np.ndarray | None = None
) -> np.ndarray:
    """PBO by CSCV from block moments: ``sums``/``squares`` are ``(…, folds, splits, trials)``
    sums and sums of squares of ``block`` bars each; every fold's combinations' logits are
    pooled, as :func:`~.results.collect` does. Returns the ``…`` array of PBOs."""
    splits, trials = sums.shape[-2], sums.shape[-1]
    masks = _cscv_masks(splits) if masks is None else masks
    half = block * splits / 2
    # single precision is plenty to order Sharpe ratios and halves the memory traffic
    sums, squares, masks = (a.astype(np.float32) for a in (sums, squares, masks))
    is_sum = np.matmul(masks, sums)  # combos × trials per fold
    is_sq = np.matmul(masks, squares)
    oos_sum = sums.sum(axis=-2, keepdims=True) - is_sum
    oos_sq = squares.sum(axis=-2, keepdims=True) - is_sq
    is_sr = _order_score(is_sum, is_sq, half)
    oos_sr = _order_score(oos_sum, oos_sq, half)
    best = np.argmax(is_sr, axis=-1)[..., None]
    best_oos = np.take_along_axis(oos_sr, best, axis=-1)
    below = (oos_sr < best_oos).sum(axis=-1)
    ties = (oos_sr == best_oos).sum(axis=-1)
    rank = below + (ties + 1) / 2.0  # scipy's average rank, 1 = worst
    return np.asarray((rank <= (trials + 1) / 2.0).mean(axis=(-2, -1)))  # logit <= 0


def family_statistics(
    sums: np.ndarray, squares: np.ndarray, block: int, masks: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The ranking's statistics of noise-only family sets, from block moments.

    ``sums``/``squares`` are ``(sets, families, folds, splits, trials)`` sums and sums of
    squares of ``block`` bars of each trial's test-window returns; trial 0 is the fold's
    chosen one. Returns ``(sets, families)`` arrays: ``pbo``, ``sharpe`` (out of sample, per
    bar), ``benchmark`` (the luck benchmark of every trial of the set), ``dsr`` (with normal
    moments: skew 0, kurtosis 3) and ``consistency``."""
    sets, families, folds, splits, trials = sums.shape
    pbo = cscv_pbo(sums, squares, block, masks)
    fold_sum = sums.sum(axis=3)
    fold_sq = squares.sum(axis=3)
    n_fold = block * splits
    trial_sr = _sharpe(fold_sum, fold_sq, n_fold)  # sets × families × folds × trials
    # the variance of all trials, each about its own (family, fold) mean (trial_variance's)
    dev = trial_sr - trial_sr.mean(axis=-1, keepdims=True)
    variance = (dev * dev).reshape(sets, -1).sum(axis=1) / (families * folds * (trials - 1))
    n_trials = families * folds * trials
    bench = np.sqrt(variance) * expected_max_sharpe(1.0, n_trials)  # it scales with sqrt(var)
    n_oos = n_fold * folds
    oos = _sharpe(fold_sum[..., 0].sum(axis=2), fold_sq[..., 0].sum(axis=2), n_oos)
    z = (oos - bench[:, None]) * math.sqrt(n_oos - 1) / np.sqrt(1.0 + oos * oos / 2.0)
    return {
        "pbo": pbo,
        "sharpe": oos,
        "benchmark": np.broadcast_to(bench[:, None], oos.shape),
        "dsr": stats.norm.cdf(z),
        "consistency": (trial_sr[..., 0] > 0).mean(axis=2),
    }


def _simulate(
    rng: np.random.Generator,
    sets: int,
    *,
    families: int,
    folds: int,
    trials: int,
    splits: int,
    block: int,
    masks: np.ndarray,
    max_pbo: float,
    dsr_level: float,
    min_consistency: float,
) -> dict[str, np.ndarray]:
    shape = (sets, families, folds, splits, trials)
    # a block of ``block`` i.i.d. N(0, 1) bars: its sum ~ N(0, block) and, independent of it,
    # its sum of squares about the mean ~ chi2(block - 1)
    sums = rng.standard_normal(shape) * math.sqrt(block)
    squares = sums * sums / block + rng.chisquare(block - 1, size=shape)
    st = family_statistics(sums, squares, block, masks)
    # buy-and-hold: the series' own noise over the same out-of-sample bars
    n_oos = block * splits * folds
    market = rng.standard_normal((sets, 1)) * math.sqrt(n_oos)
    market_sq = market * market / n_oos + rng.chisquare(n_oos - 1, size=(sets, 1))
    gates: dict[str, np.ndarray] = {
        "pbo": st["pbo"] <= max_pbo,
        "dsr": st["dsr"] >= dsr_level,
        "consistency": st["consistency"] >= min_consistency,
        "beats_buy_and_hold": st["sharpe"] > _sharpe(market, market_sq, n_oos),
    }
    out = {k: np.asarray(v.any(axis=1)) for k, v in gates.items()}
    out["robust"] = np.asarray(np.logical_and.reduce(list(gates.values())).any(axis=1))
    out["pbo_minima"] = np.asarray(st["pbo"].min(axis=1))
    return out


def noise_pass_rates(
    *,
    max_pbo: float = NOISE_MAX_PBO,
    dsr_level: float = 0.95,
    min_consistency: float = 0.5,
    n_sets: int = 1000,
    families: int = FAMILIES,
    folds: int = FOLDS,
    trials: int = TRIALS,
    splits: int = SPLITS,
    bars_per_fold: int = 2000,
    seed: int = 0,
    chunk: int = 100,
) -> NoiseRates:
    """Simulate ``n_sets`` noise-only family sets (seeded) and count how often each gate, and
    the whole robust rule, passes at least one family of a set."""
    if splits < 2 or splits % 2 or trials < 2 or folds < 1 or families < 1 or n_sets < 1:
        raise ValueError("need n_sets, families, folds ≥ 1, trials ≥ 2 and an even splits ≥ 2")
    block = bars_per_fold // splits
    if block < 2:
        raise ValueError(f"bars_per_fold must be at least {2 * splits}")
    rng = np.random.default_rng(seed)
    masks = _cscv_masks(splits)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_sets, chunk):
        got = _simulate(
            rng,
            min(chunk, n_sets - start),
            families=families,
            folds=folds,
            trials=trials,
            splits=splits,
            block=block,
            masks=masks,
            max_pbo=max_pbo,
            dsr_level=dsr_level,
            min_consistency=min_consistency,
        )
        for k, v in got.items():
            parts.setdefault(k, []).append(v)
    done = {k: np.concatenate(v) for k, v in parts.items()}
    return NoiseRates(
        n_sets=n_sets,
        pbo=float(done["pbo"].mean()),
        dsr=float(done["dsr"].mean()),
        consistency=float(done["consistency"].mean()),
        beats_buy_and_hold=float(done["beats_buy_and_hold"].mean()),
        robust=float(done["robust"].mean()),
        pbo_minima=done["pbo_minima"],
    )


def calibrate_max_pbo(
    target: float = 0.10, *, step: float = 0.01, **simulation: Any
) -> tuple[float, NoiseRates]:
    """The largest PBO threshold (a multiple of ``step``) that a noise-only family set passes,
    PBO alone, in at most ``target`` of the simulated sets; with the simulation's rates at it.
    ``simulation`` takes :func:`noise_pass_rates`' size and seed arguments."""
    probe = noise_pass_rates(max_pbo=0.0, **simulation)
    minima = probe.pbo_minima
    best = 0.0
    for k in range(round(1.0 / step) + 1):
        t = round(k * step, 10)
        if float(np.mean(minima <= t)) <= target:
            best = t
    return best, noise_pass_rates(max_pbo=best, **simulation)
