"""Top strategies ranked by robustness, not by the best number.

Every candidate is a tuned study group (:class:`~.results.StudyResult`), judged on its
concatenated out-of-sample bars only. The ranking rule, in order:

1. **Eligible** only with at least ``min_trades`` positions opened out of sample (fewer is
   an anecdote, not a statistic). Ineligible candidates are listed last, never in the top.
2. **Robust** candidates first: deflated Sharpe probability ≥ ``dsr_level`` (default 0.95),
   PBO ≤ ``max_pbo`` (default :data:`~.calibration.NOISE_MAX_PBO`, set so that a family set of
   pure noise passes PBO alone at most 10% of the time; a missing PBO fails), a positive
   out-of-sample Sharpe ratio in at least ``min_consistency`` of the folds (default 0.5), and
   an out-of-sample Sharpe ratio above buy-and-hold's over the same bars: a candidate passing
   everything else but that is labelled ``below buy-and-hold``, not robust.
3. Within each group, by the deflated Sharpe probability — deflated per series for every
   trial of every family tried on that series (choosing the best family is one more
   selection): the number of trials is every trial the catalog holds for the series (pass
   ``trials``; by default the candidates' own), the trial variance that of all their trials'
   Sharpe ratios (:func:`series_trials`) — then by lower PBO, higher consistency, and last by the out-of-sample Sharpe
   ratio itself.

``top`` returns the first X rows; the whole table keeps every statistic for inspection, and
``verdict`` says in words why a row is or is not robust.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from trading_pipeline.discovery.calibration import NOISE_MAX_PBO
from trading_pipeline.discovery.results import StudyResult, deflate, pooled_variance

ROBUST = "robust"
BELOW_BH = "below buy-and-hold"
NOT_ROBUST = "not robust"
INELIGIBLE = "too few trades"


@dataclass(frozen=True)
class RankingRule:
    """Thresholds of the ranking rule (see the module docstring)."""

    min_trades: int = 10
    dsr_level: float = 0.95
    max_pbo: float = NOISE_MAX_PBO
    min_consistency: float = 0.5


@dataclass(frozen=True)
class SeriesTrials:
    """The selection made on one series: how many trials, how much their Sharpe ratios vary."""

    n_trials: int
    variance: float


def series_trials(
    results: Sequence[StudyResult], counts: Mapping[str, int] | None = None
) -> dict[str, SeriesTrials]:
    """Per series, the trials every candidate on it was chosen from.

    The count is ``counts[series]`` (every trial of every study of the series, see
    :meth:`~.catalog.StudyCatalog.trials_by_series`) and never less than the candidates' own;
    the variance is that of all the candidates' trials' per-bar Sharpe ratios together, each
    about its own fold's mean as :func:`~.results.trial_variance` does (their ``trials``
    frames), or their trial variances averaged by trials when no frame holds them.
    """
    by_series: dict[str, list[StudyResult]] = {}
    for r in results:
        by_series.setdefault(r.spec.series, []).append(r)
    out: dict[str, SeriesTrials] = {}
    for series, group in by_series.items():
        own = sum(r.n_trials for r in group)
        n = max(own, int((counts or {}).get(series, 0)))
        folds = [
            fold.get_column("test_sharpe_per_bar").to_list()
            for r in group
            if {"fold", "test_sharpe_per_bar"} <= set(r.trials.columns)
            for fold in r.trials.partition_by("fold", maintain_order=True)
        ]
        if sum(len(f) for f in folds) > len(folds):
            variance = pooled_variance(folds)
        else:
            weights = [max(r.n_trials, 1) for r in group]
            variance = float(np.average([r.trial_variance for r in group], weights=weights))
        out[series] = SeriesTrials(n, variance)
    return out


def verdict(r: StudyResult, dsr_probability: float, rule: RankingRule) -> tuple[bool, bool, str]:
    """``(eligible, robust, verdict)`` of one candidate under ``rule``."""
    trades = int(r.metrics.get("trades", 0))
    pbo = None if r.pbo is None else r.pbo.pbo
    if trades < rule.min_trades:
        return False, False, INELIGIBLE
    passes = (
        dsr_probability >= rule.dsr_level
        and pbo is not None
        and pbo <= rule.max_pbo
        and r.consistency >= rule.min_consistency
    )
    if not passes:
        return True, False, NOT_ROBUST
    if not r.metrics["sharpe"] > r.bh_metrics["sharpe"]:
        return True, False, BELOW_BH
    return True, True, ROBUST


def rank(
    results: Sequence[StudyResult],
    rule: RankingRule | None = None,
    *,
    trials: Mapping[str, int] | None = None,
) -> pl.DataFrame:
    """Every candidate with its robustness statistics, in ranking order (``rank`` from 1).

    ``trials`` maps a series to the number of trials of every study tried on it (default: the
    candidates' own); each candidate is deflated for its series' selection."""
    rule = rule or RankingRule()
    if not results:
        return pl.DataFrame()
    selection = series_trials(results, trials)
    rows = []
    for r in results:
        sel = selection[r.spec.series]
        gp = deflate(r.returns, sel.variance, sel.n_trials).probability
        trades = int(r.metrics.get("trades", 0))
        pbo = None if r.pbo is None else r.pbo.pbo
        eligible, robust, why = verdict(r, gp, rule)
        rows.append(
            {
                "strategy": r.spec.family,
                "version": r.spec.family_version,
                "series": r.spec.series,
                "study": r.spec.study_group,
                "eligible": eligible,
                "robust": robust,
                "verdict": why,
                "dsr_probability": gp,
                "dsr_probability_study": r.dsr.probability,
                "pbo": pbo,
                "consistency": r.consistency,
                "oos_sharpe": r.metrics["sharpe"],
                "oos_return": r.metrics["total_return"],
                "oos_max_drawdown": r.metrics["max_drawdown"],
                "trades": trades,
                "bh_sharpe": r.bh_metrics["sharpe"],
                "bh_return": r.bh_metrics["total_return"],
                "n_trials": r.n_trials,
                "series_trials": sel.n_trials,
                "params": str(r.best_params),
                **r.spec.cost_fractions(),  # fee, slippage: what the bot will be charged
            }
        )
    df = pl.DataFrame(rows)
    df = df.with_columns(pl.col("pbo").fill_null(1.0).alias("_pbo")).sort(
        ["eligible", "robust", "dsr_probability", "_pbo", "consistency", "oos_sharpe"],
        descending=[True, True, True, False, True, True],
    )
    return df.drop("_pbo").with_row_index("rank", offset=1)


def top(
    results: Sequence[StudyResult],
    x: int = 5,
    rule: RankingRule | None = None,
    *,
    trials: Mapping[str, int] | None = None,
) -> pl.DataFrame:
    """The first ``x`` eligible candidates of :func:`rank`."""
    ranked = rank(results, rule, trials=trials)
    if ranked.is_empty():
        return ranked
    return ranked.filter(pl.col("eligible")).head(x)
