"""Fused evaluation of compiled strategy forms: one shared line table, one compiled call.

:func:`build_plan` turns the compiled forms of many parameter sets (one family, one rule) into
a line table (each distinct ``(kind, window, slice start)`` computed once) plus per-combination
slot rows, arguments and configuration vectors; :func:`run_plan` evaluates them on one or
more bar windows in :func:`~trading_pipeline.backtest.kernels.rule_batch`.

``ctxs[k]`` is the first bar the reference ``signals()`` would be given for combination ``k``
(0 for a whole-frame backtest, a walk-forward evaluation's context start otherwise): lines whose
value depends on where the slice starts are computed on that slice, so the fused result equals
``signals()`` + the simulator bit for bit. Lines that depend only on the last ``window`` bars
are shared across slice starts (and may be cached across calls in ``local_cache``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trading_pipeline.backtest.kernels import C_SL, C_TP, rule_batch, rule_one, simulate
from trading_pipeline.backtest.metrics import N_METRICS
from trading_pipeline.strategies.compiled import (
    CROSS,
    MAX_ARGS,
    MAX_SLOTS,
    Compiled,
    stream_cross_flags,
)
from trading_pipeline.strategies.lines import (
    EMA,
    LOCAL_KINDS,
    SMA,
    VOL_SMA,
    fill_lines,
    line_values,
)


@dataclass(frozen=True)
class Series:
    """Contiguous float64 high/low/close/volume of one frame (open is read from Prices)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


@dataclass
class Plan:
    """The line table and per-combination inputs of :func:`run_plan`."""

    rule: int
    lines: np.ndarray
    base: int
    slots: np.ndarray
    args: np.ndarray
    ctxs: np.ndarray
    has_sd: np.ndarray
    cfgs: np.ndarray


def same_rule(forms: Sequence[Compiled | None]) -> bool:
    """True when every form exists and they share one rule (so one plan can hold them)."""
    return (
        bool(forms) and all(f is not None for f in forms) and len({f.rule for f in forms if f}) == 1
    )


def reads_volume(forms: Sequence[Compiled]) -> bool:
    """Whether any form reads the volume column (a volume filter)."""
    return any(kind == VOL_SMA for f in forms for kind, _ in f.lines)


def cfgs_for(
    forms: Sequence[Compiled], cfg: np.ndarray, risk_sl: float | None, risk_tp: float | None
) -> np.ndarray:
    """One configuration row per form: the family's stop-loss / take-profit apply when the risk
    rules leave them unset (as :func:`~trading_pipeline.backtest.engine.make_cfg` does)."""
    out = np.repeat(cfg[None, :], len(forms), axis=0)
    for k, f in enumerate(forms):
        sl = risk_sl if risk_sl is not None else f.stop_loss
        tp = risk_tp if risk_tp is not None else f.take_profit
        out[k, C_SL] = sl if sl else np.nan
        out[k, C_TP] = tp if tp else np.nan
    return out


def build_plan(
    s: Series,
    forms: Sequence[Compiled],
    ctxs: Sequence[int],
    stop: int,
    cfgs: np.ndarray,
    local_cache: dict[tuple[int, int], np.ndarray] | None = None,
) -> Plan:
    """The plan of ``forms`` (one rule) whose lines run on slices ``[ctxs[k], stop)``."""
    base = int(min(ctxs))
    rows: dict[tuple[int, int, int], int] = {}
    slots = np.full((len(forms), MAX_SLOTS), -1, dtype=np.int64)
    args = np.zeros((len(forms), MAX_ARGS))
    for k, (f, ctx) in enumerate(zip(forms, ctxs, strict=True)):
        for j, (kind, window) in enumerate(f.lines):
            if kind < 0:
                continue
            key = (kind, int(window), base if kind in LOCAL_KINDS else int(ctx))
            slots[k, j] = rows.setdefault(key, len(rows))
        args[k, : len(f.args)] = f.args
    table = np.empty((len(rows), stop - base))
    todo = []
    for (kind, window, ctx), r in rows.items():
        if local_cache is not None and kind in LOCAL_KINDS:
            full = local_cache.get((kind, window))
            if full is None:
                full = line_values(kind, window, s.high, s.low, s.close, s.volume)
                local_cache[(kind, window)] = full
            table[r] = full[base:stop]
        else:
            todo.append((r, kind, window, ctx))
    if todo:
        todo.sort(key=lambda x: (x[3], x[1]))  # rows sharing a prefix sum next to each other
        t = np.array(todo, dtype=np.int64)
        fill_lines(
            t[:, 0], t[:, 1], t[:, 2], t[:, 3], s.high, s.low, s.close, s.volume, base, stop, table
        )
    return Plan(
        forms[0].rule,
        table,
        base,
        slots,
        args,
        np.asarray(ctxs, dtype=np.int64),
        np.array([f.stop_distance for f in forms], dtype=np.bool_),
        np.ascontiguousarray(cfgs),
    )


def run_plan(s: Series, plan: Plan, bounds: Sequence[tuple[int, int]]) -> np.ndarray:
    """Metrics ``(combinations, windows, N_METRICS)`` of the plan on each window."""
    b = np.array(bounds, dtype=np.int64).reshape(-1, 2)
    out = np.empty((plan.slots.shape[0], b.shape[0], N_METRICS))
    rule_batch(
        s.open,
        s.high,
        s.low,
        s.close,
        s.volume,
        plan.lines,
        plan.base,
        plan.rule,
        plan.slots,
        plan.args,
        plan.ctxs,
        plan.has_sd,
        plan.cfgs,
        b,
        out,
    )
    return out


def run_one(
    s: Series,
    form: Compiled,
    cfg: np.ndarray,
    start: int,
    stop: int,
    out: np.ndarray,
    eq: np.ndarray,
    tr: np.ndarray,
) -> int:
    """One backtest of ``form`` over ``[start, stop)`` (lines on the whole frame); returns the
    number of trades written into ``tr``."""
    n = s.close.shape[0]
    kinds = [k for k, _ in form.lines]
    if form.rule == CROSS and kinds[2:] == [-1, -1, -1] and set(kinds[:2]) <= {SMA, EMA}:
        # two moving averages: flags streamed bar by bar, no line table (the memory floor)
        flags = np.zeros(n, np.int8)
        (ka, wa), (kb, wb) = form.lines[0], form.lines[1]
        stream_cross_flags(int(ka != SMA), wa, int(kb != SMA), wb, s.close, stop, flags)
        return int(
            simulate(
                s.open, s.high, s.low, s.close, flags, np.empty(0), start, stop, cfg, out, eq, tr
            )
        )
    plan = build_plan(s, [form], [0], n, cfg[None, :])
    return int(
        rule_one(
            s.open,
            s.high,
            s.low,
            s.close,
            s.volume,
            plan.lines,
            plan.rule,
            plan.slots[0],
            plan.args[0],
            bool(plan.has_sd[0]),
            start,
            stop,
            plan.cfgs[0],
            out,
            eq,
            tr,
        )
    )
