"""Compute registry indicators with TA-Lib (the reference implementation, called in C)."""

from __future__ import annotations

from functools import cache

import numpy as np
import talib
from talib import abstract

from trading_pipeline.market.indicators.registry import TALIB_INPUT_OVERRIDES, Indicator

_Function = abstract.Function  # type: ignore[attr-defined]  # generated at import time
_INPUT_CACHE: dict[str, tuple[str, ...]] = {}


def input_columns(func: str) -> tuple[str, ...]:
    """The OHLCV columns TA-Lib's ``func`` reads, in its positional order."""
    if func in TALIB_INPUT_OVERRIDES:
        return TALIB_INPUT_OVERRIDES[func]
    if func not in _INPUT_CACHE:
        cols: list[str] = []
        for value in _Function(func).info["input_names"].values():
            cols.extend([value] if isinstance(value, str) else list(value))
        _INPUT_CACHE[func] = tuple(cols)
    return _INPUT_CACHE[func]


@cache
def output_names(func: str) -> tuple[str, ...]:
    """TA-Lib's names for the outputs of ``func``, in order."""
    return tuple(_Function(func).info["output_names"])


def raw_outputs(ind: Indicator, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """TA-Lib's outputs for ``ind`` keyed by output name (all outputs, before any transform)."""
    fn = getattr(talib, ind.func)
    result = fn(*(arrays[c] for c in input_columns(ind.func)), **ind.params)
    names = output_names(ind.func) if ind.family != "pattern" else ()
    if isinstance(result, tuple):
        return {n: np.asarray(r, dtype=np.float64) for n, r in zip(names, result, strict=True)}
    out = np.asarray(result, dtype=np.float64)
    if ind.family == "pattern":
        out[: min(ind.lookback, out.size)] = np.nan  # TA-Lib writes 0 before it can look back
    return {ind.outputs[0]: out}


def transformed(ind: Indicator, values: np.ndarray) -> np.ndarray:
    """Apply the start-independent transform of a cumulative output (N-bar diff or ratio)."""
    if ind.transform is None:
        return values
    n = ind.transform_period
    out = np.full_like(values, np.nan)
    if ind.transform == "diff":
        out[n:] = values[n:] - values[:-n]
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[n:] = values[n:] / values[:-n]
    return out


def compute(ind: Indicator, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The columns ``ind`` contributes, keyed by column name."""
    raw = raw_outputs(ind, arrays)
    return {
        col: transformed(ind, raw[out]) for out, col in zip(ind.outputs, ind.columns, strict=True)
    }
