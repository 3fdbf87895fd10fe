"""Indicator lines shared across a grid: each distinct window computed once (rows × bars)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from trading_pipeline.strategies.base import Params


@njit(cache=True, error_model="numpy")
def sma_lines(close: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Rolling means of ``close`` for each window, from one prefix sum (rows × bars)."""
    n = close.shape[0]
    csum = np.empty(n + 1)
    csum[0] = 0.0
    acc = 0.0
    for i in range(n):
        acc += close[i]
        csum[i + 1] = acc
    out = np.full((windows.shape[0], n), np.nan)
    for w in range(windows.shape[0]):
        win = windows[w]
        for i in range(win - 1, n):
            out[w, i] = (csum[i + 1] - csum[i + 1 - win]) / win
    return out


def line_index(
    combos: Sequence[Params], a: str, b: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct windows of parameters ``a`` and ``b`` and each combination's row in them."""
    windows = sorted({int(p[a]) for p in combos} | {int(p[b]) for p in combos})  # type: ignore[arg-type]
    row = {w: i for i, w in enumerate(windows)}
    ia = np.array([row[int(p[a])] for p in combos], dtype=np.int64)  # type: ignore[arg-type]
    ib = np.array([row[int(p[b])] for p in combos], dtype=np.int64)  # type: ignore[arg-type]
    return np.array(windows, dtype=np.int64), ia, ib
