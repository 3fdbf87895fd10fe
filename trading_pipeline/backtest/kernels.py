"""Compiled backtest kernels (numba): one simulation core, used for one backtest and for grids.

:func:`simulate` walks bars ``[start, stop)`` once, holding cash, position, equity and the
running metric sums in local variables, and writes O(1) metrics (plus, on request, the equity
curve and the trade list). :func:`rule_batch` evaluates a whole grid (or a batch of tuning
trials) of one family's compiled form in parallel over combinations: each distinct indicator
line is computed once by the caller and shared, flags are derived per combination into one
small per-combination buffer by the strategies' own compiled rule, and only metrics come
back — never a bars × combos matrix. :func:`rule_one` is one long backtest in one call.

Fill model (see ``fills`` in the docs of :mod:`trading_pipeline.backtest.engine`): signals are
read at each bar's close; with ``fill_open`` they execute at the next bar's open, otherwise at
the same bar's close. Buying spends ``size`` × cash including the fee (``units = value / (1 +
fee) / price``), selling receives ``units × price × (1 - fee)``; slippage moves every fill price
against the trader. This is vectorbt's ``from_signals`` arithmetic for ``size=inf``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from trading_pipeline.strategies.compiled import rule_flags

# cfg vector layout
C_CASH, C_FEE, C_SLIP, C_FILL_OPEN, C_SIZE, C_SL, C_TP, C_TRAIL = 0, 1, 2, 3, 4, 5, 6, 7
C_MAX_HOLD, C_SHORT, C_MIN_VALUE, C_BPY = 8, 9, 10, 11
N_CFG = 12

METRICS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_bars",
    "trades",
    "win_rate",
    "profit_factor",
    "avg_trade",
    "exposure",
    "turnover",
    "final_equity",
    "fees_paid",
)
N_METRICS = len(METRICS)
TRADE_FIELDS: tuple[str, ...] = (
    "entry_bar",
    "exit_bar",
    "direction",
    "entry_price",
    "exit_price",
    "units",
    "pnl",
    "return",
)

LONG_ENTRY, LONG_EXIT, SHORT_ENTRY, SHORT_EXIT = 1, 2, 4, 8


# trade statistics accumulated in a small array (touched only when a trade closes)
S_CLOSED, S_WINS, S_GP, S_GL, S_RET, S_FEES, S_TRADED, S_OPENED, S_REC = 0, 1, 2, 3, 4, 5, 6, 7, 8


@njit(cache=True, error_model="numpy")
def _close(
    units: float,
    px: float,
    i: int,
    entry_val: float,
    entry_px: float,
    entry_bar: int,
    fee: float,
    slip: float,
    st: np.ndarray,
    tr_out: np.ndarray,
) -> float:
    """Close ``units`` at ``px`` (slippage against the trader); return the cash change."""
    if units > 0.0:
        pxa = px * (1.0 - slip)
        gross = units * pxa
        f = gross * fee
        delta = gross - f
        pnl = delta - entry_val
    else:
        pxa = px * (1.0 + slip)
        gross = -units * pxa
        f = gross * fee
        delta = -(gross + f)
        pnl = entry_val + delta
    st[S_FEES] += f
    st[S_TRADED] += gross
    st[S_CLOSED] += 1.0
    tret = pnl / entry_val if entry_val != 0.0 else 0.0
    st[S_RET] += tret
    if pnl > 0.0:
        st[S_WINS] += 1.0
        st[S_GP] += pnl
    else:
        st[S_GL] -= pnl
    k = int(st[S_REC])
    if k < tr_out.shape[0]:
        tr_out[k, 0] = entry_bar
        tr_out[k, 1] = i
        tr_out[k, 2] = 1.0 if units > 0.0 else -1.0
        tr_out[k, 3] = entry_px
        tr_out[k, 4] = pxa
        tr_out[k, 5] = units
        tr_out[k, 6] = pnl
        tr_out[k, 7] = tret
        st[S_REC] += 1.0
    return delta


@njit(cache=True, error_model="numpy")
def _open(
    direction: int,
    px: float,
    cash: float,
    size: float,
    fee: float,
    slip: float,
    min_value: float,
    sl: float,
    tp: float,
    sd: float,
    st: np.ndarray,
) -> tuple[float, float, float, float, float, float]:
    """Open a position spending ``size`` × cash (fee included).

    Returns ``(units, cash_after, entry_val, entry_px, stop_px, tp_px)``; ``units == 0`` when
    the order is below the minimum order value."""
    value = size * cash
    if not (value >= min_value and value > 0.0):
        return 0.0, cash, 0.0, 0.0, np.nan, np.nan
    notional = value / (1.0 + fee)
    if direction > 0:
        pxa = px * (1.0 + slip)
        units = notional / pxa
        cash_after = cash - value
        entry_val = value
        f = value - notional
    else:
        pxa = px * (1.0 - slip)
        units = -notional / pxa
        f = notional * fee
        cash_after = cash + notional - f
        entry_val = notional - f
    st[S_FEES] += f
    st[S_TRADED] += notional
    st[S_OPENED] += 1.0
    d = 1.0 if direction > 0 else -1.0
    stop_px = np.nan
    if not np.isnan(sl):
        stop_px = pxa * (1.0 - d * sl)
    if not np.isnan(sd):
        sp = pxa - d * sd
        if np.isnan(stop_px) or d * (sp - stop_px) > 0.0:
            stop_px = sp
    tp_px = pxa * (1.0 + d * tp) if not np.isnan(tp) else np.nan
    return units, cash_after, entry_val, pxa, stop_px, tp_px


@njit(cache=True, error_model="numpy")
def _stop_exit(
    units: float,
    o: float,
    h: float,
    lo: float,
    stop_px: float,
    tp_px: float,
    ref: float,
    trail: float,
) -> float:
    """The price at which a stop, trailing stop or take-profit fills on this bar, else NaN.
    Gaps through a level fill at the open; the stop wins when both levels are inside the bar."""
    if units > 0.0:
        level = stop_px
        if not np.isnan(trail):
            t = ref * (1.0 - trail)
            if np.isnan(level) or t > level:
                level = t
        if not np.isnan(level) and lo <= level:
            return min(o, level)
        if not np.isnan(tp_px) and h >= tp_px:
            return max(o, tp_px)
        return np.nan
    level = stop_px
    if not np.isnan(trail):
        t = ref * (1.0 + trail)
        if np.isnan(level) or t < level:
            level = t
    if not np.isnan(level) and h >= level:
        return max(o, level)
    if not np.isnan(tp_px) and lo <= tp_px:
        return min(o, tp_px)
    return np.nan


@njit(cache=True, error_model="numpy")
def simulate(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    flags: np.ndarray,
    stop_dist: np.ndarray,
    start: int,
    stop: int,
    cfg: np.ndarray,
    out: np.ndarray,
    eq_out: np.ndarray,
    tr_out: np.ndarray,
) -> int:
    """Simulate bars ``[start, stop)`` from per-bar ``flags``; write metrics into ``out``;
    return the number of trades recorded.

    ``stop_dist`` may be empty (no per-signal stop). ``eq_out`` (length ``stop - start``) and
    ``tr_out`` (rows × 8) are filled only when they are non-empty.
    """
    none = stop_dist[:0]
    return simulate_levels(
        o, h, lo, c, flags, stop_dist, none, none, start, stop, cfg, out, eq_out, tr_out
    )


@njit(cache=True, error_model="numpy")
def simulate_levels(  # noqa: C901 - one fused loop on purpose
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    flags: np.ndarray,
    stop_dist: np.ndarray,
    sl_bar: np.ndarray,
    tp_bar: np.ndarray,
    start: int,
    stop: int,
    cfg: np.ndarray,
    out: np.ndarray,
    eq_out: np.ndarray,
    tr_out: np.ndarray,
) -> int:
    """:func:`simulate`, with the stop-loss / take-profit fractions given per bar when
    ``sl_bar``/``tp_bar`` are non-empty (NaN = none; they replace ``cfg``'s): an entry takes
    the levels of the bar whose close decided it, and keeps them while it is held. The
    continuous out-of-sample account uses this, its parameters (so its levels) changing at
    fold boundaries while a position carries on.
    """
    cash0 = cfg[C_CASH]
    fee = cfg[C_FEE]
    slip = cfg[C_SLIP]
    fill_open = cfg[C_FILL_OPEN] != 0.0
    size = cfg[C_SIZE]
    sl = cfg[C_SL]
    tp = cfg[C_TP]
    trail = cfg[C_TRAIL]
    max_hold = cfg[C_MAX_HOLD]
    allow_short = cfg[C_SHORT] != 0.0
    min_value = cfg[C_MIN_VALUE]
    bpy = cfg[C_BPY]
    has_sd = stop_dist.shape[0] > 0
    has_lv = sl_bar.shape[0] > 0
    has_stops = has_sd or has_lv or not (np.isnan(sl) and np.isnan(tp) and np.isnan(trail))
    has_hold = not np.isnan(max_hold)
    quiet_ok = not has_stops and not has_hold
    rec_eq = eq_out.shape[0] > 0
    st = np.zeros(9)

    cash = cash0
    units = 0.0
    entry_px = 0.0
    entry_val = 0.0
    entry_bar = 0
    stop_px = np.nan
    tp_px = np.nan
    ref = 0.0
    held = 0
    pend_close = False
    pend_open = 0
    pend_sd = np.nan

    prev_eq = cash0
    peak = cash0
    peak_i = start - 1
    max_dd = 0.0
    max_dur = 0
    s1 = 0.0
    s2 = 0.0
    sd2 = 0.0
    s_eq = 0.0
    in_bars = 0

    i = start
    while i < stop:
        # 0. fast paths over quiet bars (no signal, nothing pending, no stops or holding limit)
        if flags[i] == 0 and pend_open == 0 and not pend_close and quiet_ok:
            if units == 0.0 and prev_eq == cash:
                # flat and equity equal to cash: nothing changes but the clock
                j = i
                while j < stop and flags[j] == 0:
                    j += 1
                s_eq += cash * (j - i)
                if rec_eq:
                    for q in range(i, j):
                        eq_out[q - start] = cash
                if cash >= peak:
                    peak = cash
                    peak_i = j - 1
                elif j - 1 - peak_i > max_dur:
                    max_dur = j - 1 - peak_i
                i = j
                continue
            if units != 0.0:
                # holding: only mark to market
                j = i
                while j < stop and flags[j] == 0:
                    eq = cash + units * c[j]
                    r = eq / prev_eq - 1.0
                    s1 += r
                    s2 += r * r
                    ng = min(r, 0.0)  # branch-free downside sum
                    sd2 += ng * ng
                    s_eq += eq
                    prev_eq = eq
                    if eq >= peak:
                        peak = eq
                        peak_i = j
                    else:
                        if eq < peak * (1.0 - max_dd):  # a deeper drawdown: divide only then
                            max_dd = max(max_dd, 1.0 - eq / peak)
                        if j - peak_i > max_dur:
                            max_dur = j - peak_i
                    if rec_eq:
                        eq_out[j - start] = eq
                    j += 1
                in_bars += j - i
                i = j
                continue

        # 1. orders decided at the previous close fill at this open
        if fill_open:
            if pend_close and units != 0.0:
                cash += _close(
                    units, o[i], i, entry_val, entry_px, entry_bar, fee, slip, st, tr_out
                )
                units = 0.0
            if pend_open != 0 and units == 0.0:
                if has_lv:  # the levels of the bar that decided the order
                    sl = sl_bar[i - 1]
                    tp = tp_bar[i - 1]
                units, cash, entry_val, entry_px, stop_px, tp_px = _open(
                    pend_open, o[i], cash, size, fee, slip, min_value, sl, tp, pend_sd, st
                )
                entry_bar = i
                held = 0
                ref = entry_px
            pend_close = False
            pend_open = 0

        # 2. intrabar stops on an open position
        if has_stops and units != 0.0:
            exit_px = _stop_exit(units, o[i], h[i], lo[i], stop_px, tp_px, ref, trail)
            if units > 0.0 and h[i] > ref:
                ref = h[i]
            elif units < 0.0 and lo[i] < ref:
                ref = lo[i]
            if not np.isnan(exit_px):
                cash += _close(
                    units, exit_px, i, entry_val, entry_px, entry_bar, fee, slip, st, tr_out
                )
                units = 0.0

        # 3. signals at this close
        fl = flags[i]
        if units != 0.0 or fl != 0:
            if has_hold and units != 0.0:
                held += 1
            want_close = False
            if units > 0.0:
                want_close = (fl & LONG_EXIT) != 0 and (fl & LONG_ENTRY) == 0
            elif units < 0.0:
                want_close = (fl & SHORT_EXIT) != 0 and (fl & SHORT_ENTRY) == 0
            if has_hold and units != 0.0 and held >= max_hold:
                want_close = True
            want_open = 0
            if units == 0.0 or want_close:
                if (fl & LONG_ENTRY) != 0 and (fl & LONG_EXIT) == 0 and not units > 0.0:
                    want_open = 1
                elif (
                    allow_short
                    and (fl & SHORT_ENTRY) != 0
                    and (fl & SHORT_EXIT) == 0
                    and not units < 0.0
                ):
                    want_open = -1
            sd = stop_dist[i] if has_sd else np.nan
            if fill_open:
                pend_close = want_close
                pend_open = want_open
                pend_sd = sd
            else:
                if want_close:
                    cash += _close(
                        units, c[i], i, entry_val, entry_px, entry_bar, fee, slip, st, tr_out
                    )
                    units = 0.0
                if want_open != 0:
                    if has_lv:
                        sl = sl_bar[i]
                        tp = tp_bar[i]
                    units, cash, entry_val, entry_px, stop_px, tp_px = _open(
                        want_open, c[i], cash, size, fee, slip, min_value, sl, tp, sd, st
                    )
                    entry_bar = i
                    held = 0
                    ref = entry_px

        # 4. mark to market at this close
        eq = cash + units * c[i]
        if units != 0.0:
            in_bars += 1
        r = eq / prev_eq - 1.0
        s1 += r
        s2 += r * r
        ng = min(r, 0.0)
        sd2 += ng * ng
        s_eq += eq
        prev_eq = eq
        if eq >= peak:
            peak = eq
            peak_i = i
        else:
            if eq < peak * (1.0 - max_dd):
                max_dd = max(max_dd, 1.0 - eq / peak)
            if i - peak_i > max_dur:
                max_dur = i - peak_i
        if rec_eq:
            eq_out[i - start] = eq
        i += 1

    # an open trade is listed too (exit_bar -1), marked at the last close
    n_rec = int(st[S_REC])
    if units != 0.0 and n_rec < tr_out.shape[0] and stop > start:
        px = c[stop - 1]
        mtm = units * px
        pnl = mtm - entry_val if units > 0.0 else entry_val + mtm
        tr_out[n_rec, 0] = entry_bar
        tr_out[n_rec, 1] = -1
        tr_out[n_rec, 2] = 1.0 if units > 0.0 else -1.0
        tr_out[n_rec, 3] = entry_px
        tr_out[n_rec, 4] = px
        tr_out[n_rec, 5] = units
        tr_out[n_rec, 6] = pnl
        tr_out[n_rec, 7] = pnl / entry_val if entry_val != 0.0 else 0.0
        n_rec += 1

    _finish(out, st, prev_eq, cash0, stop - start, bpy, s1, s2, sd2, s_eq, max_dd, max_dur, in_bars)
    return n_rec


@njit(cache=True, error_model="numpy")
def _finish(
    out: np.ndarray,
    st: np.ndarray,
    final: float,
    cash0: float,
    nb: int,
    bpy: float,
    s1: float,
    s2: float,
    sd2: float,
    s_eq: float,
    max_dd: float,
    max_dur: int,
    in_bars: int,
) -> None:
    """Write the metrics (order of :data:`METRICS`) from the running sums."""
    closed = st[S_CLOSED]
    out[0] = final / cash0 - 1.0
    years = nb / bpy
    out[1] = (final / cash0) ** (1.0 / years) - 1.0 if final > 0.0 and years > 0.0 else -1.0
    mean = s1 / nb if nb > 0 else 0.0
    var = (s2 - nb * mean * mean) / (nb - 1) if nb > 1 else 0.0
    out[2] = mean / np.sqrt(var) * np.sqrt(bpy) if var > 1e-30 else 0.0
    dd2 = sd2 / nb if nb > 0 else 0.0
    out[3] = mean / np.sqrt(dd2) * np.sqrt(bpy) if dd2 > 1e-30 else 0.0
    out[4] = out[1] / max_dd if max_dd > 0.0 else 0.0
    out[5] = max_dd
    out[6] = max_dur
    out[7] = st[S_OPENED]
    out[8] = st[S_WINS] / closed if closed > 0 else np.nan
    if st[S_GL] > 0.0:
        out[9] = st[S_GP] / st[S_GL]
    else:
        out[9] = np.inf if st[S_GP] > 0.0 else np.nan
    out[10] = st[S_RET] / closed if closed > 0 else np.nan
    out[11] = in_bars / nb if nb > 0 else 0.0
    out[12] = st[S_TRADED] / (s_eq / nb) if s_eq > 0.0 else 0.0
    out[13] = final
    out[14] = st[S_FEES]


@njit(cache=True, parallel=True, error_model="numpy")
def rule_batch(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    lines: np.ndarray,
    base: int,
    rule: int,
    slots: np.ndarray,
    args: np.ndarray,
    ctxs: np.ndarray,
    has_sd: np.ndarray,
    cfgs: np.ndarray,
    bounds: np.ndarray,
    out: np.ndarray,
) -> None:
    """Metrics of every combination ``k`` on every window ``bounds[s]`` into ``out[k, s]``.

    Combination ``k``'s flags come from :func:`~trading_pipeline.strategies.compiled.rule_flags`
    over the shared line table (``slots[k]``, ``args[k]``, slice start ``ctxs[k]``), once for
    all windows; each window is simulated from cash with ``cfgs[k]``. Parallel over
    combinations; only metrics come back.
    """
    n = c.shape[0]
    first = bounds[0, 0]
    last = bounds[bounds.shape[0] - 1, 1]
    none = np.empty(0)
    no_tr = np.empty((0, 8))
    for k in prange(slots.shape[0]):
        flags = np.zeros(n, np.int8)
        sd = np.empty(n if has_sd[k] else 0)
        rule_flags(rule, lines, base, slots[k], args[k], c, v, ctxs[k], first, last, flags, sd)
        for s in range(bounds.shape[0]):
            simulate(
                o, h, lo, c, flags, sd, bounds[s, 0], bounds[s, 1], cfgs[k], out[k, s], none, no_tr
            )


@njit(cache=True, error_model="numpy")
def rule_one(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    lines: np.ndarray,
    rule: int,
    slots: np.ndarray,
    args: np.ndarray,
    has_sd: bool,
    start: int,
    stop: int,
    cfg: np.ndarray,
    out: np.ndarray,
    eq_out: np.ndarray,
    tr_out: np.ndarray,
) -> int:
    """One backtest of a compiled form over bars ``[start, stop)`` (lines over all bars):
    flags and simulation in one call, with the equity curve and trades on request."""
    n = c.shape[0]
    flags = np.zeros(n, np.int8)
    sd = np.empty(n if has_sd else 0)
    rule_flags(rule, lines, 0, slots, args, c, v, 0, start, stop, flags, sd)
    return simulate(o, h, lo, c, flags, sd, start, stop, cfg, out, eq_out, tr_out)
