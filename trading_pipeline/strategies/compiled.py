"""The families' compiled forms: which indicator lines a parameter set reads and which rule
turns them into signal flags, evaluated by one compiled function.

A family's ``compiled(params)`` returns a :class:`Compiled`: a rule id, the lines its slots
read (``(kind, window)`` from :mod:`.lines`), the rule's scalar arguments and the family's own
stop-loss / take-profit. :func:`rule_flags` writes the same flags (and per-bar stop distance)
as the family's Python ``signals()``, which stays the reference: a parity test compares the two
on every family. A grid shares each distinct line across combinations; the backtest kernels
call :func:`rule_flags` and the simulator for every combination inside one compiled call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from trading_pipeline.strategies import indicators as ind
from trading_pipeline.strategies.base import LONG_ENTRY, LONG_EXIT

# rules
CROSS, MACD, BAND, OSC, BREAKOUT, ABOVE, ALWAYS = range(7)
MAX_SLOTS = 5
MAX_ARGS = 3
NO_LINE = (-1, 0)


@dataclass(frozen=True)
class Compiled:
    """One parameter set's compiled form (see the module docstring).

    ``lines[s]`` is slot ``s``'s ``(kind, window)``, :data:`NO_LINE` for an unused optional
    slot (a filter that is off); ``stop_distance`` says whether the rule emits a per-bar stop.
    """

    rule: int
    lines: tuple[tuple[int, int], ...]
    args: tuple[float, ...] = ()
    stop_loss: float | None = None
    take_profit: float | None = None
    stop_distance: bool = False

    def __post_init__(self) -> None:
        if len(self.lines) > MAX_SLOTS or len(self.args) > MAX_ARGS:
            raise ValueError(f"a compiled form has at most {MAX_SLOTS} lines, {MAX_ARGS} args")


@njit(cache=True, error_model="numpy")
def _at(lines: np.ndarray, row: int, base: int, ctx: int, i: int) -> float:
    """Line ``row`` at bar ``i``; NaN before the slice start ``ctx`` (as ``signals()`` sees)."""
    if i < ctx or i < base:
        return np.nan
    return lines[row, i - base]


@njit(cache=True, error_model="numpy")
def _macd_lines(
    lines: np.ndarray, base: int, rf: int, rs: int, signal: int, ctx: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """MACD line and its signal EMA on bars ``[ctx, stop)`` (index ``i - ctx``), as
    ``Macd.signals`` computes them (the signal EMA starts at the line's first valid value)."""
    m = stop - ctx
    line = np.empty(m)
    for i in range(m):
        line[i] = lines[rf, ctx + i - base] - lines[rs, ctx + i - base]
    sig = np.full(m, np.nan)
    v0 = 0
    while v0 < m and np.isnan(line[v0]):
        v0 += 1
    if v0 < m:
        sig[v0:] = ind.ema(line[v0:].copy(), signal)
    return line, sig


@njit(cache=True, error_model="numpy")
def rule_flags(  # noqa: C901 - one dispatch over the rules on purpose
    rule: int,
    lines: np.ndarray,
    base: int,
    slots: np.ndarray,
    args: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    ctx: int,
    start: int,
    stop: int,
    flags: np.ndarray,
    sd: np.ndarray,
) -> None:
    """Flags (and, when ``sd`` is non-empty, the stop distance) of bars ``[start, stop)``.

    ``lines[r, i - base]`` is line ``r`` at bar ``i``; ``slots`` gives each slot's row (-1 =
    unused); ``ctx`` is the first bar the reference ``signals()`` would have been given.
    """
    if rule == ALWAYS:
        for i in range(start, stop):
            flags[i] = LONG_ENTRY
        return
    if rule == MACD:
        line, sig = _macd_lines(lines, base, slots[0], slots[1], int(args[0]), ctx, stop)
        for i in range(start, stop):
            j = i - ctx
            f = 0
            if j > 0:
                a0, b0, a1, b1 = line[j], sig[j], line[j - 1], sig[j - 1]
                if a0 > b0 and a1 <= b1:
                    f |= LONG_ENTRY
                if a0 < b0 and a1 >= b1:
                    f |= LONG_EXIT
            flags[i] = f
        return
    for i in range(start, stop):
        f = 0
        if rule == CROSS:
            a0 = _at(lines, slots[0], base, ctx, i)
            b0 = _at(lines, slots[1], base, ctx, i)
            a1 = _at(lines, slots[0], base, ctx, i - 1)
            b1 = _at(lines, slots[1], base, ctx, i - 1)
            if a0 > b0 and a1 <= b1:
                f |= LONG_ENTRY
                if slots[2] >= 0 and not (c[i] > _at(lines, slots[2], base, ctx, i)):
                    f = 0
                if slots[3] >= 0 and not (v[i] > args[0] * _at(lines, slots[3], base, ctx, i)):
                    f = 0
            if a0 < b0 and a1 >= b1:
                f |= LONG_EXIT
            if sd.shape[0] > 0:
                sd[i] = args[1] * _at(lines, slots[4], base, ctx, i)
        elif rule == BAND:
            mid = _at(lines, slots[0], base, ctx, i)
            if c[i] < mid - args[0] * _at(lines, slots[1], base, ctx, i):
                f |= LONG_ENTRY
            if c[i] > mid:
                f |= LONG_EXIT
        elif rule == OSC:
            r = _at(lines, slots[0], base, ctx, i)
            if r < args[0]:
                f |= LONG_ENTRY
            if r > args[1]:
                f |= LONG_EXIT
        elif rule == BREAKOUT:
            if c[i] > _at(lines, slots[0], base, ctx, i):
                f |= LONG_ENTRY
            if c[i] < _at(lines, slots[1], base, ctx, i):
                f |= LONG_EXIT
        elif rule == ABOVE:
            now = _at(lines, slots[0], base, ctx, i) > args[0]
            before = _at(lines, slots[0], base, ctx, i - 1) > args[0]
            if now and not before:
                f |= LONG_ENTRY
            if before and not now:
                f |= LONG_EXIT
        flags[i] = f


@njit(cache=True, error_model="numpy", inline="always")
def _ma_step(
    kind: int, w: int, x: float, i: int, ring: np.ndarray, p: int, acc: float, prev: float
) -> tuple[float, int, float, float]:
    """One bar of an SMA (``kind`` 0) or EMA (1) fed bar by bar, with the sums and the
    arithmetic of the array forms (so the same bits): returns ``(value, ring slot, running
    sum, previous EMA)``; an SMA keeps only the last ``w + 1`` prefix sums in ``ring``."""
    acc += x
    if kind == 0:
        p = p + 1 if p < w else 0
        ring[p] = acc
        q = p + 1 if p < w else 0  # the slot of the prefix sum w bars back
        v = (acc - ring[q]) / w if i >= w - 1 else np.nan
        return v, p, acc, prev
    if i < w - 1:
        return np.nan, p, acc, prev
    if i == w - 1:
        prev = acc / w
    else:
        alpha = 2.0 / (w + 1.0)
        prev = alpha * x + (1.0 - alpha) * prev
    return prev, p, acc, prev


@njit(cache=True, error_model="numpy")
def stream_cross_flags(
    kind_a: int, wa: int, kind_b: int, wb: int, c: np.ndarray, stop: int, flags: np.ndarray
) -> None:
    """The CROSS rule's flags of two SMA/EMA lines of the close on bars ``[0, stop)`` without
    materialising the lines (a long single backtest near the memory floor); equal to
    :func:`rule_flags` over the line table."""
    ra = np.zeros(wa + 1)
    rb = np.zeros(wb + 1)
    pa = pb = 0
    acc_a = acc_b = 0.0
    prev_a = prev_b = np.nan
    a1 = np.nan
    b1 = np.nan
    for i in range(stop):
        x = c[i]
        a0, pa, acc_a, prev_a = _ma_step(kind_a, wa, x, i, ra, pa, acc_a, prev_a)
        b0, pb, acc_b, prev_b = _ma_step(kind_b, wb, x, i, rb, pb, acc_b, prev_b)
        f = 0
        if a0 > b0 and a1 <= b1:
            f |= LONG_ENTRY
        if a0 < b0 and a1 >= b1:
            f |= LONG_EXIT
        flags[i] = f
        a1 = a0
        b1 = b0
