"""What the selector must beat, scored on the same held-out rows with the same switching costs.

- **single best**: the one candidate that made the most on the training rows, always;
- **regime lookup**: the performance matrix's rule, learned on the training rows only (the
  discovery matrix covers the held-out period too, so it cannot be used as is): for each
  candidate and regime of record of its series, its mean log window return on training rows;
  at a decision, the candidate whose *current* regime has the best mean, or cash when none is
  positive (a regime seen fewer than ``min_rows`` times is not trusted);
- **buy-and-hold** of each series, and of all of them in equal parts;
- **cash**: zero.

:func:`policy_metrics` gives every policy the same numbers: net return (compounded),
annualised Sharpe of the window returns, hit rate (share of decisions that picked the
window's best candidate), share of positive windows, maximum drawdown and switches.
:func:`probability_metrics` scores probabilities: log loss and (multi-class) Brier score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from trading_pipeline.selector.dataset import follow

CASH_INDEX = 0
EPS = 1e-15


def single_best(train_returns: np.ndarray, switch_cost: float) -> int:
    """The non-cash candidate with the highest compounded training return (held always)."""
    totals = [
        float(np.prod(follow(np.full(len(train_returns), j), train_returns, switch_cost)))
        for j in range(1, train_returns.shape[1])
    ]
    if not totals:
        return CASH_INDEX
    return 1 + int(np.argmax(totals))


def regime_table(
    train_returns: np.ndarray, train_regimes: np.ndarray, *, min_rows: int = 5
) -> dict[tuple[int, str], float]:
    """(candidate, regime) → mean log window return on the training rows."""
    table: dict[tuple[int, str], float] = {}
    logr = np.log1p(train_returns)
    for j in range(1, train_returns.shape[1]):
        for regime in set(train_regimes[:, j].tolist()):
            mask = train_regimes[:, j] == regime
            if int(mask.sum()) >= min_rows:
                table[(j, str(regime))] = float(logr[mask, j].mean())
    return table


def regime_lookup(table: Mapping[tuple[int, str], float], regimes: np.ndarray) -> np.ndarray:
    """Per row, the candidate whose current regime did best in training (cash if none > 0)."""
    out = np.zeros(len(regimes), dtype=np.int64)
    for i, row in enumerate(regimes):
        best, best_score = CASH_INDEX, 0.0
        for j in range(1, len(row)):
            score = table.get((j, str(row[j])))
            if score is not None and score > best_score:
                best, best_score = j, score
        out[i] = best
    return out


def max_drawdown(returns: np.ndarray) -> float:
    if len(returns) == 0:
        return 0.0
    equity = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return float(np.min(equity / peak - 1.0))


def policy_metrics(
    net: np.ndarray,
    *,
    periods_per_year: float,
    choices: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> dict[str, float]:
    """Net return, Sharpe, hit rate, positive share, drawdown and switches of a policy."""
    net = np.asarray(net, dtype=float)
    sd = float(np.std(net, ddof=1)) if len(net) > 1 else 0.0
    out = {
        "net_return": float(np.prod(1.0 + net) - 1.0) if len(net) else 0.0,
        "sharpe": float(np.mean(net) / sd * math.sqrt(periods_per_year)) if sd > 0 else 0.0,
        "positive_rate": float(np.mean(net > 0)) if len(net) else 0.0,
        "max_drawdown": max_drawdown(net),
        "rows": float(len(net)),
    }
    if choices is not None and labels is not None:
        out["hit_rate"] = float(np.mean(np.asarray(choices) == np.asarray(labels)))
        out["switches"] = float(np.sum(np.diff(np.asarray(choices)) != 0))
    return out


def probability_metrics(proba: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Multi-class log loss and Brier score (sum over classes, mean over rows)."""
    n, k = proba.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    p_true = np.clip(proba[np.arange(n), labels], EPS, 1.0)
    return {
        "log_loss": float(-np.mean(np.log(p_true))),
        "brier": float(np.mean(np.sum((proba - onehot) ** 2, axis=1))),
    }


def onehot(choices: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(choices), k))
    out[np.arange(len(choices)), choices] = 1.0
    return out
