"""Metric names, their meaning, and conversion of kernel output rows to plain dicts.

The kernel computes every metric in one pass (see :mod:`trading_pipeline.backtest.kernels`):

- ``total_return``: final equity / starting cash - 1.
- ``cagr``: compound annual growth, years = bars / ``bars_per_year(interval)``.
- ``sharpe``/``sortino``: mean per-bar return over its standard deviation (ddof 1) / downside
  deviation (root mean square of negative returns), times ``sqrt(bars_per_year)``; 0 when flat.
- ``calmar``: CAGR / max drawdown. ``max_drawdown``: largest peak-to-trough fall of equity
  marked at each close (fraction); ``max_drawdown_bars``: longest time below a previous peak.
- ``trades``: positions opened (an open one at the end counts); ``win_rate``, ``profit_factor``
  (gross profit / gross loss) and ``avg_trade`` (mean return per trade, fees included) over the
  closed trades, NaN when there are none.
- ``exposure``: fraction of bars holding a position at the close; ``turnover``: traded value
  (both sides) / average equity; ``final_equity``; ``fees_paid``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trading_pipeline.backtest.kernels import METRICS, N_METRICS, TRADE_FIELDS

__all__ = ["METRICS", "N_METRICS", "TRADE_FIELDS", "json_safe", "row_to_dict"]

INT_METRICS = frozenset({"trades", "max_drawdown_bars"})


def row_to_dict(row: np.ndarray) -> dict[str, float]:
    """One kernel output row as ``{metric: value}`` (counts as ints)."""
    out: dict[str, float] = {}
    for name, value in zip(METRICS, row.tolist(), strict=True):
        out[name] = int(value) if name in INT_METRICS else float(value)
    return out


def json_safe(value: Any) -> Any:
    """Replace NaN/inf by ``None`` (JSON has neither), recursively, and numpy scalars by Python."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
