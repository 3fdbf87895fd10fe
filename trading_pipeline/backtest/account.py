"""One continuous account over consecutive windows, each traded with its own signals.

A walk-forward study trades each test window with the parameters its own fold chose; the
out-of-sample result is ONE account over the concatenated windows, as a bot whose assignment
changes at each boundary would run it:

* cash, the open position and its stop/take-profit levels carry over a boundary (no forced
  exit, no new start from cash);
* from the first bar of window ``k`` on, the flags (and per-bar stop distances, and the
  family's stop-loss / take-profit fractions for new entries) are those of window ``k``'s
  signals; an order decided at the close of window ``k-1``'s last bar was decided by window
  ``k-1``'s signals and fills at window ``k``'s first open;
* a position change the new signals cause at the boundary (an exit the new parameters fire on
  a held position, an entry on a flat account) is an ordinary trade: fee and slippage paid.

Each window's signals are computed by the caller on bars before the window's end only (see
:class:`Leg`); the simulation is the kernel's (:func:`~.kernels.simulate_levels`), so the
arithmetic is the one every other backtest uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from trading_pipeline.backtest.costs import CostModel, RiskRules
from trading_pipeline.backtest.engine import Prices, make_cfg, trades_frame
from trading_pipeline.backtest.kernels import C_SL, C_TP, N_METRICS, TRADE_FIELDS, simulate_levels
from trading_pipeline.backtest.metrics import row_to_dict
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.base import Signals


@dataclass(frozen=True)
class Leg:
    """Signals computed on bars ``[ctx, stop)`` (warm-up before the window, nothing after it),
    traded over the window ``[start, stop)`` (``ctx <= start < stop``)."""

    signals: Signals
    ctx: int
    start: int
    stop: int


def run_account(
    bars: pl.DataFrame,
    legs: Sequence[Leg],
    *,
    cash: float = 1000.0,
    costs: CostModel | None = None,
    risk: RiskRules | None = None,
    interval: str,
    prices: Prices | None = None,
) -> tuple[dict[str, float], np.ndarray, pl.DataFrame]:
    """Metrics, the equity curve (one value per bar, at the close) and the trades (bar indices
    of ``bars``) of one account over the consecutive windows of ``legs``."""
    if not legs:
        raise UserInputError("no window to trade")
    p = prices or Prices.of(bars)
    n = p.close.shape[0]
    costs = costs or CostModel()
    risk = risk or RiskRules()
    first, last = legs[0].start, legs[-1].stop
    if first < 0 or last > n:
        raise UserInputError(f"windows [{first}, {last}) outside 0..{n}")
    flags = np.zeros(n, np.int8)
    sd = np.full(n, np.nan)
    sl = np.full(n, np.nan)
    tp = np.full(n, np.nan)
    any_sd = False
    prev = first
    for leg in legs:
        if leg.start != prev or not (leg.ctx <= leg.start < leg.stop):
            raise UserInputError(
                f"windows must be consecutive and non-empty: [{leg.start}, {leg.stop}) "
                f"after bar {prev}, signals from bar {leg.ctx}"
            )
        prev = leg.stop
        f = np.asarray(leg.signals.flags)
        if f.shape[0] != leg.stop - leg.ctx:
            raise UserInputError(
                f"strategy returned {f.shape[0]} signals for {leg.stop - leg.ctx} bars"
            )
        own = slice(leg.start - leg.ctx, None)
        flags[leg.start : leg.stop] = f[own]
        if leg.signals.stop_distance is not None:
            sd[leg.start : leg.stop] = np.asarray(leg.signals.stop_distance, dtype=float)[own]
            any_sd = True
        cfg = make_cfg(cash=cash, costs=costs, risk=risk, interval=interval, signals=leg.signals)
        sl[leg.start : leg.stop] = cfg[C_SL]
        tp[leg.start : leg.stop] = cfg[C_TP]
    cfg = make_cfg(cash=cash, costs=costs, risk=risk, interval=interval)
    out = np.empty(N_METRICS)
    eq = np.empty(last - first)
    tr = np.empty((last - first + 2, len(TRADE_FIELDS)))  # room for every trade
    n_tr = simulate_levels(
        p.open,
        p.high,
        p.low,
        p.close,
        flags,
        sd if any_sd else np.empty(0),
        sl,
        tp,
        first,
        last,
        cfg,
        out,
        eq,
        tr,
    )
    return row_to_dict(out), eq, trades_frame(bars, tr, n_tr)
