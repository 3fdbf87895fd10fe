"""The portfolio simulator: rebalance a cash account to target weights per coin.

Conventions (those of every backtest here): a decision taken at bar ``t``'s close (the family's
``meta['rebalance']``, plus the window's first bar, so a window starts invested) fills at bar
``t + 1``'s open; bar ``start`` itself is held in cash. At a fill the equity is marked at the
open, each coin's target value is ``weight × equity``, and the difference is traded — sells
first (``units × open × (1 - slippage) × (1 - fee)`` received), then buys (spending ``S``
buys ``S / (1 + fee) / (open × (1 + slippage))`` units), scaled down together when the cash
does not cover them (no leverage, no negative cash). Orders worth less than ``min_order_value``
are skipped, except a sale of a coin whose target is 0 (it is sold whole). Between decisions the
holdings drift with prices. Equity is marked at each close.

One compiled loop (numba) over the bars; :func:`simulate_reference` is the same arithmetic in
plain Python, kept for the parity test. Reported per window: total return, CAGR, Sharpe,
Sortino, max drawdown (of the per-bar equity), ``trades`` (rebalances that filled at least one
order: the decisions acted on, what discovery's ranking counts as trades for an allocation that
may stay invested throughout), ``opened`` (coins bought from no holding), ``orders``,
``turnover`` (traded value per year / mean equity), ``costs`` (fees and slippage paid, quote
units) and ``exposure`` (mean invested fraction at the close).

Benchmarks over the same bars and costs: buy-and-hold of each coin (all equity in the coin at
the first fill) and the equal-weight basket bought at the first fill and NOT rebalanced after.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from trading_pipeline.backtest.costs import DEFAULT_MIN_ORDER_VALUE, CostModel
from trading_pipeline.backtest.multi import curve_metrics
from trading_pipeline.errors import UserInputError

BASKET = "equal_weight_basket"


@dataclass(frozen=True)
class PortfolioRun:
    """Per-bar results of one simulation over ``[start, stop)`` (index 0 is bar ``start``)."""

    equity: np.ndarray  # at each close
    invested: np.ndarray  # invested fraction at each close
    entries: np.ndarray  # a rebalance filled at least one order at this bar's open
    traded: np.ndarray  # traded value at this bar's open
    costs: np.ndarray  # fees + slippage paid at this bar's open
    orders: np.ndarray  # orders filled at this bar's open
    metrics: dict[str, float]

    @property
    def returns(self) -> np.ndarray:
        prev = np.concatenate([[self.metrics["start_cash"]], self.equity[:-1]])
        return np.where(prev > 0, self.equity / np.where(prev > 0, prev, 1.0) - 1.0, 0.0)


@njit(cache=True, error_model="numpy")
def _sells(
    o: np.ndarray,
    w: np.ndarray,
    q: np.ndarray,
    value: float,
    fee: np.ndarray,
    slip: np.ndarray,
    min_order: float,
    want: np.ndarray,
    out: np.ndarray,
) -> float:
    """Sell down to the targets (a zero target sells the coin whole); fill ``want`` with the
    cash each buy needs (fee included). Returns the cash received; ``out`` accumulates traded
    value, costs and orders."""
    got_all = 0.0
    for i in range(q.shape[0]):
        target = w[i] * value
        cur = q[i] * o[i]
        want[i] = 0.0
        if cur > target and q[i] > 0.0:
            if w[i] <= 0.0:
                units = q[i]
            elif cur - target >= min_order:
                units = (cur - target) / o[i]
            else:
                continue
            got = units * o[i] * (1.0 - slip[i]) * (1.0 - fee[i])
            got_all += got
            q[i] = 0.0 if w[i] <= 0.0 else q[i] - units
            out[0] += units * o[i]
            out[1] += units * o[i] - got
            out[2] += 1.0
        elif target - cur >= min_order:
            want[i] = (target - cur) * (1.0 + fee[i])
    return got_all


@njit(cache=True, error_model="numpy")
def _buys(
    o: np.ndarray,
    q: np.ndarray,
    cash: float,
    fee: np.ndarray,
    slip: np.ndarray,
    min_order: float,
    want: np.ndarray,
    out: np.ndarray,
) -> float:
    """Buy ``want`` (scaled down together when ``cash`` does not cover it); returns the cash
    spent, ``out[3]`` set when a coin was bought from no holding."""
    need = 0.0
    for i in range(q.shape[0]):
        need += want[i]
    scale = 1.0
    if need > cash:
        scale = cash / need if need > 0.0 else 0.0
    spent = 0.0
    for i in range(q.shape[0]):
        spend = want[i] * scale
        if spend <= 0.0 or spend / (1.0 + fee[i]) < min_order:
            continue
        notional = spend / (1.0 + fee[i])
        units = notional / (o[i] * (1.0 + slip[i]))
        if q[i] <= 0.0:
            out[3] = 1.0
        q[i] += units
        spent += spend
        out[0] += notional
        out[1] += spend - units * o[i]
        out[2] += 1.0
    return spent


@njit(cache=True, error_model="numpy")
def _simulate(
    open_: np.ndarray,
    close: np.ndarray,
    weights: np.ndarray,
    decide: np.ndarray,
    cash0: float,
    fee: np.ndarray,
    slip: np.ndarray,
    min_order: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n, m = close.shape
    equity = np.empty(n)
    invested = np.empty(n)
    entries = np.zeros(n, dtype=np.bool_)
    opened = np.zeros(n, dtype=np.bool_)
    traded = np.zeros(n)
    costs = np.zeros(n)
    orders = np.zeros(n)
    q = np.zeros(m)
    want = np.zeros(m)
    out = np.zeros(4)  # traded value, costs, orders, opened
    cash = cash0
    for t in range(n):
        if t > 0 and decide[t - 1]:
            o = open_[t]
            value = cash
            for i in range(m):
                value += q[i] * o[i]
            out[:] = 0.0
            cash += _sells(o, weights[t - 1], q, value, fee, slip, min_order, want, out)
            cash -= _buys(o, q, cash, fee, slip, min_order, want, out)
            cash = max(cash, 0.0)
            traded[t], costs[t], orders[t] = out[0], out[1], out[2]
            opened[t] = out[3] > 0.0
            entries[t] = out[2] > 0.0
        held = 0.0
        for i in range(m):
            held += q[i] * close[t, i]
        equity[t] = cash + held
        invested[t] = held / equity[t] if equity[t] > 0.0 else 0.0
    return equity, invested, entries, opened, traded, costs, orders


def simulate_reference(
    open_: np.ndarray,
    close: np.ndarray,
    weights: np.ndarray,
    decide: np.ndarray,
    cash0: float,
    fee: Sequence[float],
    slip: Sequence[float],
    min_order: float,
) -> tuple[list[float], list[float]]:
    """The same rebalancing in plain Python, written from the module docstring (parity test):
    ``(equity per bar, cash per bar)``."""
    n, m = len(close), len(close[0])
    q = [0.0] * m
    cash = cash0
    equity: list[float] = []
    cashes: list[float] = []
    for t in range(n):
        if t > 0 and decide[t - 1]:
            w = [float(x) for x in weights[t - 1]]
            o = [float(x) for x in open_[t]]
            value = cash + sum(q[i] * o[i] for i in range(m))
            buys = {}
            for i in range(m):
                target, cur = w[i] * value, q[i] * o[i]
                if cur > target and q[i] > 0:
                    if w[i] <= 0:
                        sold = q[i]
                    elif cur - target >= min_order:
                        sold = (cur - target) / o[i]
                    else:
                        continue
                    cash += sold * o[i] * (1 - slip[i]) * (1 - fee[i])
                    q[i] = 0.0 if w[i] <= 0 else q[i] - sold
                elif target - cur >= min_order:
                    buys[i] = (target - cur) * (1 + fee[i])
            need = sum(buys.values())
            scale = min(1.0, cash / need) if need > 0 else 1.0
            for i, amount in buys.items():
                spend = amount * scale
                if spend / (1 + fee[i]) < min_order:
                    continue
                q[i] += spend / (1 + fee[i]) / (o[i] * (1 + slip[i]))
                cash -= spend
            cash = max(cash, 0.0)
        equity.append(cash + sum(q[i] * float(close[t][i]) for i in range(m)))
        cashes.append(cash)
    return equity, cashes


def _as_costs(costs: CostModel | Sequence[CostModel] | None, m: int) -> list[CostModel]:
    if costs is None:
        return [CostModel()] * m
    if isinstance(costs, CostModel):
        return [costs] * m
    if len(costs) != m:
        raise UserInputError(f"{len(costs)} cost models for {m} coins")
    return list(costs)


def simulate(
    open_: np.ndarray,
    close: np.ndarray,
    weights: np.ndarray,
    decide: np.ndarray,
    *,
    cash: float = 1000.0,
    costs: CostModel | Sequence[CostModel] | None = None,
    bars_per_year: float,
    min_order_value: float = DEFAULT_MIN_ORDER_VALUE,
    starts: Sequence[int] = (0,),
) -> PortfolioRun:
    """Simulate bars ``0..n-1`` of the given ``(bars, coins)`` arrays from ``cash``; a decision
    is forced at each index of ``starts`` (a window's first bar: a new parameter set takes over
    there, so its weights are traded at the next open whatever its schedule)."""
    o = np.ascontiguousarray(open_, dtype=np.float64)
    c = np.ascontiguousarray(close, dtype=np.float64)
    w = np.ascontiguousarray(weights, dtype=np.float64)
    if o.ndim != 2 or o.shape != c.shape or w.shape != c.shape or len(decide) != c.shape[0]:
        raise UserInputError("open, close and weights must be (bars, coins) arrays alike")
    if c.shape[0] == 0:
        raise UserInputError("no bars to simulate")
    if not (math.isfinite(cash) and cash > 0):
        raise UserInputError(f"cash must be positive, got {cash}")
    d = np.array(decide, dtype=np.bool_)
    for s in starts:
        d[int(s)] = True
    models = _as_costs(costs, c.shape[1])
    fee = np.array([cm.fee for cm in models], dtype=np.float64)
    slip = np.array([cm.slippage for cm in models], dtype=np.float64)
    eq, inv, ent, opened, traded, paid, orders = _simulate(
        o, c, w, d, float(cash), fee, slip, float(min_order_value)
    )
    metrics = curve_metrics(eq, cash, "1h")  # sharpe rescaled below to the real bar length
    r_prev = np.concatenate([[cash], eq[:-1]])
    r = eq / r_prev - 1.0
    sd = float(r.std(ddof=1)) if r.size > 1 else 0.0
    down = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    years = r.size / bars_per_year
    growth = eq[-1] / cash
    metrics.update(
        sharpe=float(r.mean() / sd * math.sqrt(bars_per_year)) if sd > 0 else 0.0,
        sortino=float(r.mean() / down * math.sqrt(bars_per_year)) if down > 0 else 0.0,
        cagr=float(growth ** (1.0 / years) - 1.0) if growth > 0 else -1.0,
        trades=float(ent.sum()),
        opened=float(opened.sum()),
        orders=float(orders.sum()),
        turnover=float(traded.sum() / max(float(np.mean(eq)), 1e-12) / years),
        costs=float(paid.sum()),
        exposure=float(inv.mean()),
        end_value=float(eq[-1]),
        start_cash=float(cash),
    )
    return PortfolioRun(eq, inv, ent, traded, paid, orders, metrics)


def hold_weights(n: int, m: int, which: int | None) -> np.ndarray:
    """Constant weights: all in coin ``which``, or ``1 / m`` each (``None``: the basket)."""
    w = np.zeros((n, m))
    if which is None:
        w[:] = 1.0 / m
    else:
        w[:, which] = 1.0
    return w


def benchmarks(
    open_: np.ndarray,
    close: np.ndarray,
    coins: Sequence[str],
    *,
    cash: float = 1000.0,
    costs: CostModel | Sequence[CostModel] | None = None,
    bars_per_year: float,
) -> dict[str, PortfolioRun]:
    """Buy-and-hold of each coin and the equal-weight basket (bought once, never rebalanced)
    over the given bars, bought at the first fill (the second bar's open), same costs."""
    n, m = close.shape
    no_more = np.zeros(n, dtype=bool)  # only the forced first decision
    out = {}
    for j, coin in enumerate([*coins, None]):
        out[coin or BASKET] = simulate(
            open_,
            close,
            hold_weights(n, m, None if coin is None else j),
            no_more,
            cash=cash,
            costs=costs,
            bars_per_year=bars_per_year,
        )
    return out
