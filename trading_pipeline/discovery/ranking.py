"""Top strategies ranked by robustness, not by the best number.

Every candidate is a tuned study group (:class:`~.results.StudyResult`), judged on its
concatenated out-of-sample bars only. The ranking rule, in order:

1. **Eligible** only with at least ``min_trades`` positions opened out of sample (fewer is
   an anecdote, not a statistic). Ineligible candidates are listed last, never in the top.
2. **Robust** candidates first: deflated Sharpe probability ≥ ``dsr_level`` (default 0.95),
   PBO ≤ ``max_pbo`` (default 0.5; a missing PBO fails), and a positive out-of-sample Sharpe
   ratio in at least ``min_consistency`` of the folds (default 0.5).
3. Within each group, by the deflated Sharpe probability — recomputed across ALL candidates
   ranked together, so the number of trials is every trial of every family and series
   (choosing the best family is one more selection) — then by lower PBO, higher consistency,
   and last by the out-of-sample Sharpe ratio itself.

``top`` returns the first X rows; the whole table keeps every statistic for inspection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from trading_pipeline.discovery.results import StudyResult, deflate


@dataclass(frozen=True)
class RankingRule:
    """Thresholds of the ranking rule (see the module docstring)."""

    min_trades: int = 10
    dsr_level: float = 0.95
    max_pbo: float = 0.5
    min_consistency: float = 0.5


def _global_dsr(results: Sequence[StudyResult]) -> list[float]:
    """Each candidate's DSR probability against the luck benchmark of all trials together
    (their count summed, their Sharpe variance pooled weighted by trials)."""
    total = sum(r.n_trials for r in results)
    weights = np.array([max(r.n_trials, 1) for r in results], dtype=float)
    variance = float(np.average([r.trial_variance for r in results], weights=weights))
    return [deflate(r.returns, variance, total).probability for r in results]


def rank(results: Sequence[StudyResult], rule: RankingRule | None = None) -> pl.DataFrame:
    """Every candidate with its robustness statistics, in ranking order (``rank`` from 1)."""
    rule = rule or RankingRule()
    if not results:
        return pl.DataFrame()
    global_p = _global_dsr(results)
    rows = []
    for r, gp in zip(results, global_p, strict=True):
        trades = int(r.metrics.get("trades", 0))
        pbo = None if r.pbo is None else r.pbo.pbo
        eligible = trades >= rule.min_trades
        robust = (
            eligible
            and gp >= rule.dsr_level
            and pbo is not None
            and pbo <= rule.max_pbo
            and r.consistency >= rule.min_consistency
        )
        rows.append(
            {
                "strategy": r.spec.family,
                "version": r.spec.family_version,
                "series": r.spec.series,
                "study": r.spec.study_group,
                "eligible": eligible,
                "robust": robust,
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
    results: Sequence[StudyResult], x: int = 5, rule: RankingRule | None = None
) -> pl.DataFrame:
    """The first ``x`` eligible candidates of :func:`rank`."""
    ranked = rank(results, rule)
    if ranked.is_empty():
        return ranked
    return ranked.filter(pl.col("eligible")).head(x)
