"""Backtests over several input series: two-venue arbitrage and a hedged spot position.

The single-series engine (:mod:`.engine`) holds one position in one market; these families need
more state, so they get their own simulations with the same conventions: signals read at each
bar's close fill at the next bar's open, every fill pays its venue's fee and slippage, bars
``[start, stop)`` are simulated while signals are computed on bars ``< stop`` only, and a
buy-and-hold benchmark is reported beside.

**Arbitrage (inventory model).** Each venue is pre-funded at the first bar's open with half the
capital, held half in quote and half in base (``quote_share``). There are no instant transfers:
a signal buys on the cheap venue and sells the same base amount on the dear one, both at the next
open, with that venue's fee and slippage; the size is ``max_use`` of the limiting balance (quote
on the buying venue, base on the selling one). Every ``rebalance_bars`` the balances are moved
back to half/half when one venue holds less than ``rebalance_skew`` of the base or of the
quote (checking costs nothing, moving does): the base transfer pays ``withdraw_fee_base`` (in base units), the quote
transfer pays ``rebalance_bps`` of the moved amount (e.g. the USDT/USD conversion and wire), and
both arrive ``transfer_bars`` later (unusable meanwhile, still counted in equity).

P&L is measured against simply holding the starting inventory (``inventory_hold``): the
inventory's price moves are not arbitrage profit. ``total_return``/``sharpe`` are those of the
excess curve ``cash + equity - hold``; the gross spread captured (mid to mid at the fills),
fees, slippage and rebalancing costs are reported separately. Quote balances of the two venues
are summed at par: with Binance USDT and Coinbase USD this assumes 1 USDT = 1 USD.

**Hedging.** A spot position (target fraction of equity from ``meta['exposure']``), traded at
the next open when the target changes, plus, when a USD-M futures series is given, a short hedge
leg (``meta['hedge']`` × the spot value) settled against the futures price with its own costs
(funding payments are not modelled). The rest sits in the stable coin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.backtest.engine import BacktestResult, buy_and_hold, resolve_family
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import INTERVAL_MS, bars_per_year
from trading_pipeline.strategies.base import (
    LONG_ENTRY,
    SHORT_ENTRY,
    Signals,
    StrategyFamily,
)

# USD-M futures taker fee (regular tier) used when no futures cost model is given.
DEFAULT_FUTURES_COSTS = CostModel(fee=0.0005, slippage_bps=2.0)
# Binance BTC withdrawal fee (network fee) in BTC; Coinbase sends are of the same order.
DEFAULT_WITHDRAW_FEE_BASE = 0.0002


@dataclass(frozen=True)
class ArbSettings:
    """Inventory and transfer assumptions of the arbitrage simulation (not tuned)."""

    quote_share: float = 0.5
    withdraw_fee_base: float = DEFAULT_WITHDRAW_FEE_BASE
    transfer_bars: int = 1
    min_order_value: float = 10.0
    rebalance_skew: float = 0.25

    def __post_init__(self) -> None:
        if not (0.0 < self.quote_share < 1.0):
            raise UserInputError(f"quote_share must be in (0, 1), got {self.quote_share}")
        if not (self.withdraw_fee_base >= 0.0 and math.isfinite(self.withdraw_fee_base)):
            raise UserInputError("withdraw_fee_base must be >= 0")
        if self.transfer_bars < 0:
            raise UserInputError("transfer_bars must be >= 0")
        if not (0.0 <= self.rebalance_skew < 0.5):
            raise UserInputError(f"rebalance_skew must be in [0, 0.5), got {self.rebalance_skew}")


@dataclass
class MultiResult(BacktestResult):
    """A :class:`BacktestResult` plus the benchmark(s) and the strategy's own accounting."""

    benchmark: dict[str, float] = field(default_factory=dict)
    hold_equity: np.ndarray | None = None
    ledger: pl.DataFrame | None = None
    # the curve the metrics are computed on (arbitrage: cash + equity − holding the inventory)
    scored_equity: np.ndarray | None = None


def curve_metrics(equity: np.ndarray, start_value: float, interval: str) -> dict[str, float]:
    """total_return, cagr, sharpe, sortino, max_drawdown of an equity curve (one value per bar)."""
    eq = np.asarray(equity, dtype=float)
    bpy = bars_per_year(interval)
    prev = np.concatenate([[start_value], eq[:-1]])
    r = np.where(prev > 0, eq / np.where(prev > 0, prev, 1.0) - 1.0, 0.0)
    n = r.size
    sd = float(r.std(ddof=1)) if n > 1 else 0.0
    down = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))) if n else 0.0
    total = float(eq[-1] / start_value - 1.0) if n else 0.0
    years = n / bpy if n else 1.0
    growth = eq[-1] / start_value if n else 1.0
    peak = np.maximum.accumulate(np.concatenate([[start_value], eq]))[1:] if n else np.ones(0)
    return {
        "total_return": total,
        "cagr": float(growth ** (1.0 / years) - 1.0) if growth > 0 else -1.0,
        "sharpe": float(r.mean() / sd * math.sqrt(bpy)) if sd > 0 else 0.0,
        "sortino": float(r.mean() / down * math.sqrt(bpy)) if down > 0 else 0.0,
        "max_drawdown": float(np.max(1.0 - eq / peak)) if n else 0.0,
    }


def _costs_for(
    costs: Mapping[str, CostModel] | CostModel | None, key: str, default: CostModel
) -> CostModel:
    if costs is None:
        return default
    if isinstance(costs, CostModel):
        return costs
    return costs.get(key, default)


def _range(n: int, start: int, stop: int | None) -> tuple[int, int]:
    stop = n if stop is None else stop
    if start < 0 or stop > n or start >= stop:
        raise UserInputError(f"bar range [{start}, {stop}) is empty or outside 0..{n}")
    return start, stop


def _truncate(series: Mapping[str, pl.DataFrame], last_time: Any) -> dict[str, pl.DataFrame]:
    return {k: v.filter(pl.col("open_time") <= last_time) for k, v in series.items()}


def backtest_multi(
    series: Mapping[str, pl.DataFrame],
    family: StrategyFamily | str,
    params: Mapping[str, Any],
    *,
    cash: float = 1000.0,
    costs: Mapping[str, CostModel] | CostModel | None = None,
    interval: str,
    start: int = 0,
    stop: int | None = None,
    detail: bool = False,
    arb: ArbSettings | None = None,
) -> MultiResult:
    """Backtest a multi-input family over aligned bars ``[start, stop)``.

    ``series`` keys name the inputs (for arbitrage: venue ``a`` then venue ``b``; for hedging
    see :mod:`trading_pipeline.strategies.hedging`); ``costs`` maps those keys to each venue's
    :class:`CostModel` (one model for all, or defaults: 0.1 % + 2 bps; futures 0.05 % + 2 bps).
    Bar indices refer to the aligned bars the family's signals come with (``meta['open_time']``).
    """
    fam = resolve_family(family)
    if interval not in INTERVAL_MS:
        raise UserInputError(f"unknown interval {interval!r}")
    if not (math.isfinite(cash) and cash > 0):
        raise UserInputError(f"cash must be positive, got {cash}")
    valid = fam.validate(params)
    if fam.name == "arbitrage":
        return _backtest_arbitrage(
            series, fam, valid, cash, costs, interval, start, stop, detail, arb or ArbSettings()
        )
    if fam.name == "hedging":
        return _backtest_hedging(series, fam, valid, cash, costs, interval, start, stop, detail)
    raise UserInputError(f"backtest_multi does not know how to simulate family {fam.name!r}")


def _signals_until(
    fam: StrategyFamily,
    series: Mapping[str, pl.DataFrame],
    params: Mapping[str, Any],
    start: int,
    stop: int | None,
) -> tuple[Signals, int, int]:
    """Signals on the aligned bars up to ``stop`` (exclusive) only, and the checked range."""
    full = fam.signals_multi(series, params)
    times = full.meta["open_time"]
    s0, s1 = _range(len(times), start, stop)
    if s1 < len(times):  # recompute on data that ends at the range's last bar: no peeking
        full = fam.signals_multi(_truncate(series, times[s1 - 1]), params)
    return full, s0, s1


def _backtest_arbitrage(
    series: Mapping[str, pl.DataFrame],
    fam: StrategyFamily,
    params: Mapping[str, Any],
    cash: float,
    costs: Mapping[str, CostModel] | CostModel | None,
    interval: str,
    start: int,
    stop: int | None,
    detail: bool,
    arb: ArbSettings,
) -> MultiResult:
    from trading_pipeline.strategies.arbitrage import aligned_pair

    aligned = aligned_pair(series, interval)
    keys = list(series)
    key_a, key_b = (keys[0], keys[1]) if len(keys) == 2 else ("a", "b")
    sig, s0, s1 = _signals_until(fam, series, params, start, stop)
    aligned = aligned.head(len(sig))
    ca = _costs_for(costs, key_a, CostModel())
    cb = _costs_for(costs, key_b, CostModel())
    sim = simulate_arbitrage(
        aligned["a_open"].to_numpy(),
        aligned["a_close"].to_numpy(),
        aligned["b_open"].to_numpy(),
        aligned["b_close"].to_numpy(),
        np.asarray(sig.flags),
        s0,
        s1,
        cash=cash,
        costs_a=ca,
        costs_b=cb,
        max_use=float(params["max_use"]),
        rebalance_bars=int(params["rebalance_bars"]),
        rebalance_bps=float(params["rebalance_bps"]),
        arb=arb,
    )
    diff = sim.equity - sim.hold
    # float noise between two identical books must not look like a (tiny, steady) profit
    excess = cash + np.where(np.abs(diff) < 1e-9 * cash, 0.0, diff)
    m = curve_metrics(excess, cash, interval)
    m.update(sim.totals)
    m["inventory_return"] = float(sim.hold[-1] / cash - 1.0)
    m["equity_return"] = float(sim.equity[-1] / cash - 1.0)
    m["final_equity"] = float(sim.equity[-1])
    m["exposure"] = float(np.mean(sim.traded))
    spread = np.asarray(sig.meta["spread_bps"])[s0:s1]
    m["median_abs_spread_bps"] = float(np.median(np.abs(spread)))
    m["signal_bars"] = int(np.count_nonzero(np.asarray(sig.flags)[s0:s1]))
    benchmark = _buy_and_hold(aligned, "a_", ca, cash, interval, s0, s1)
    times = aligned["open_time"][s0:s1]
    ledger = pl.DataFrame(sim.fills) if detail and sim.fills else None
    return MultiResult(
        fam.name,
        fam.version,
        dict(params),
        m,
        s1 - s0,
        sim.equity if detail else None,
        None,
        times if detail else None,
        benchmark=benchmark,
        hold_equity=sim.hold if detail else None,
        ledger=ledger,
        scored_equity=excess if detail else None,
    )


def _buy_and_hold(
    frame: pl.DataFrame, prefix: str, c: CostModel, cash: float, interval: str, s0: int, s1: int
) -> dict[str, float]:
    """The engine's buy-and-hold of one input (columns ``<prefix>open`` ...), same costs."""
    bars = frame.select(
        "open_time", *[pl.col(f"{prefix}{k}").alias(k) for k in ("open", "high", "low", "close")]
    )
    return buy_and_hold(bars, cash=cash, costs=c, interval=interval, start=s0, stop=s1)


def _skewed(q: list[float], base: list[float], skew: float) -> bool:
    """Whether one venue holds less than ``skew`` of the quote or of the base (worth moving)."""
    tq, tb = q[0] + q[1], base[0] + base[1]
    return bool((tq > 0 and min(q) < skew * tq) or (tb > 0 and min(base) < skew * tb))


@dataclass
class ArbSim:
    """Per-bar equity of the arbitrage book and of holding its starting inventory, and totals."""

    equity: np.ndarray
    hold: np.ndarray
    traded: np.ndarray
    totals: dict[str, float]
    fills: list[dict[str, Any]]


def simulate_arbitrage(
    a_open: np.ndarray,
    a_close: np.ndarray,
    b_open: np.ndarray,
    b_close: np.ndarray,
    flags: np.ndarray,
    start: int,
    stop: int,
    *,
    cash: float,
    costs_a: CostModel,
    costs_b: CostModel,
    max_use: float,
    rebalance_bars: int,
    rebalance_bps: float,
    arb: ArbSettings,
) -> ArbSim:
    """The two-venue inventory simulation over bars ``[start, stop)`` (see the module docstring).

    A flag at bar ``i - 1`` fills at bar ``i``'s opens; a flag on the last bar of the range is
    not filled (there is no next open inside the range).
    """
    pa0, pb0 = float(a_open[start]), float(b_open[start])
    half = cash / 2.0
    q = [half * arb.quote_share, half * arb.quote_share]  # quote on a, on b
    base = [half * (1 - arb.quote_share) / pa0, half * (1 - arb.quote_share) / pb0]
    hold_q, hold_b = list(q), list(base)
    transit: list[tuple[int, int, str, float]] = []  # (arrival bar, venue, "q"/"b", amount)
    fa, fb, sa, sb = costs_a.fee, costs_b.fee, costs_a.slippage, costs_b.slippage
    fees = [0.0, 0.0]
    tot = dict.fromkeys(
        (
            "gross_spread_pnl",
            "slippage_cost",
            "fees_paid",
            "rebalance_cost",
            "traded_value",
        ),
        0.0,
    )
    trades = skipped = rebalances = 0
    n = stop - start
    equity = np.empty(n)
    hold = np.empty(n)
    traded = np.zeros(n, dtype=bool)
    fills: list[dict[str, Any]] = []
    for i in range(start, stop):
        if transit:
            keep = []
            for arrive, venue, asset, amount in transit:
                if arrive <= i:
                    if asset == "q":
                        q[venue] += amount
                    else:
                        base[venue] += amount
                else:
                    keep.append((arrive, venue, asset, amount))
            transit = keep
        ao, bo = float(a_open[i]), float(b_open[i])
        f = int(flags[i - 1]) if i > start else 0
        if f & (LONG_ENTRY | SHORT_ENTRY):
            # buy venue: a when b is dear (LONG_ENTRY), else b
            buy, sell = (0, 1) if f & LONG_ENTRY else (1, 0)
            px = (ao, bo)
            fee = (fa, fb)
            slip = (sa, sb)
            buy_px = px[buy] * (1.0 + slip[buy])
            sell_px = px[sell] * (1.0 - slip[sell])
            units = max_use * min(base[sell], q[buy] / (buy_px * (1.0 + fee[buy])))
            if units * px[buy] < arb.min_order_value:
                skipped += 1
            else:
                cost = units * buy_px * (1.0 + fee[buy])
                proceeds = units * sell_px * (1.0 - fee[sell])
                q[buy] -= cost
                base[buy] += units
                base[sell] -= units
                q[sell] += proceeds
                fee_paid = units * buy_px * fee[buy] + units * sell_px * fee[sell]
                fees[buy] += units * buy_px * fee[buy]
                fees[sell] += units * sell_px * fee[sell]
                tot["fees_paid"] += fee_paid
                tot["gross_spread_pnl"] += units * (px[sell] - px[buy])
                tot["slippage_cost"] += units * (px[buy] * slip[buy] + px[sell] * slip[sell])
                tot["traded_value"] += units * (px[buy] + px[sell])
                trades += 1
                traded[i - start] = True
                fills.append(
                    {
                        "bar": i,
                        "buy_venue": "ab"[buy],
                        "units": units,
                        "buy_price": buy_px,
                        "sell_price": sell_px,
                        "spread_bps": (px[sell] / px[buy] - 1.0) * 1e4,
                        "net": proceeds - cost,
                    }
                )
        if (
            rebalance_bars
            and i > start
            and (i - start) % rebalance_bars == 0
            and _skewed(q, base, arb.rebalance_skew)
        ):
            d_base = (base[0] - base[1]) / 2.0  # > 0: move base from a to b
            d_q = (q[0] - q[1]) / 2.0
            mid = (ao + bo) / 2.0
            moved = False
            if abs(d_base) * mid >= arb.min_order_value and abs(d_base) > arb.withdraw_fee_base:
                src, dst = (0, 1) if d_base > 0 else (1, 0)
                amt = abs(d_base)
                base[src] -= amt
                transit.append((i + arb.transfer_bars, dst, "b", amt - arb.withdraw_fee_base))
                tot["rebalance_cost"] += arb.withdraw_fee_base * mid
                moved = True
            if abs(d_q) >= arb.min_order_value:
                src, dst = (0, 1) if d_q > 0 else (1, 0)
                amt = abs(d_q)
                q[src] -= amt
                c = amt * rebalance_bps / 1e4
                transit.append((i + arb.transfer_bars, dst, "q", amt - c))
                tot["rebalance_cost"] += c
                moved = True
            rebalances += int(moved)
        ac, bc = float(a_close[i]), float(b_close[i])
        in_transit = sum(
            amt if asset == "q" else amt * (ac if venue == 0 else bc)
            for _, venue, asset, amt in transit
        )
        equity[i - start] = q[0] + q[1] + base[0] * ac + base[1] * bc + in_transit
        hold[i - start] = hold_q[0] + hold_q[1] + hold_b[0] * ac + hold_b[1] * bc
    tot.update(
        trades=float(trades),
        skipped_no_inventory=float(skipped),
        rebalances=float(rebalances),
        fees_a=fees[0],
        fees_b=fees[1],
        net_arb_pnl=float(equity[-1] - hold[-1]),
        turnover=tot["traded_value"] / cash,
    )
    tot["net_spread_pnl"] = (
        tot["gross_spread_pnl"] - tot["slippage_cost"] - tot["fees_paid"] - tot["rebalance_cost"]
    )
    return ArbSim(equity, hold, traded, tot, fills)


def _backtest_hedging(
    series: Mapping[str, pl.DataFrame],
    fam: StrategyFamily,
    params: Mapping[str, Any],
    cash: float,
    costs: Mapping[str, CostModel] | CostModel | None,
    interval: str,
    start: int,
    stop: int | None,
    detail: bool,
) -> MultiResult:
    from trading_pipeline.strategies.hedging import aligned_closes, roles_of

    roles = roles_of(series)
    sig, s0, s1 = _signals_until(fam, series, params, start, stop)
    frame = aligned_closes(series).head(len(sig))
    cs = _costs_for(costs, roles.spot, CostModel())
    so = frame[f"{roles.spot}__open"].to_numpy()
    sc = frame[f"{roles.spot}__close"].to_numpy()
    if roles.futures:
        cf = _costs_for(costs, roles.futures, DEFAULT_FUTURES_COSTS)
        fo = frame[f"{roles.futures}__open"].to_numpy()
        fc = frame[f"{roles.futures}__close"].to_numpy()
    else:
        cf, fo, fc = DEFAULT_FUTURES_COSTS, so, sc
    exposure = np.asarray(sig.meta["exposure"])
    hedge = np.asarray(sig.meta["hedge"])
    sim = simulate_hedging(
        so, sc, fo, fc, exposure, hedge, s0, s1, cash=cash, spot_costs=cs, fut_costs=cf
    )
    m = curve_metrics(sim["equity"], cash, interval)
    m["fees_paid"] = float(sim["fees_paid"])
    m["trades"] = float(sim["trades"])
    m["final_equity"] = float(sim["equity"][-1])
    m["exposure"] = float(np.mean(exposure[s0:s1]))
    m["hedged_share"] = float(np.mean(hedge[s0:s1] > 0))
    benchmark = _buy_and_hold(frame, f"{roles.spot}__", cs, cash, interval, s0, s1)
    return MultiResult(
        fam.name,
        fam.version,
        dict(params),
        m,
        s1 - s0,
        sim["equity"] if detail else None,
        None,
        frame["open_time"][s0:s1] if detail else None,
        benchmark=benchmark,
        scored_equity=sim["equity"] if detail else None,
    )


def simulate_hedging(
    so: np.ndarray,
    sc: np.ndarray,
    fo: np.ndarray,
    fc: np.ndarray,
    exposure: np.ndarray,
    hedge: np.ndarray,
    start: int,
    stop: int,
    *,
    cash: float,
    spot_costs: CostModel,
    fut_costs: CostModel,
) -> dict[str, Any]:
    """Spot units towards ``exposure[i-1]`` of equity and a futures short of ``hedge[i-1]`` ×
    the spot value, traded at bar ``i``'s open only when the target changes."""
    n = stop - start
    equity = np.empty(n)
    money, units, fut_units, fut_entry = cash, 0.0, 0.0, 0.0
    fees = 0.0
    trades = 0
    cur_e, cur_h = 0.0, 0.0
    for i in range(start, stop):
        te = float(exposure[i - 1]) if i > start else 0.0
        th = float(hedge[i - 1]) if i > start else 0.0
        if te != cur_e or th != cur_h:
            o, f_o = float(so[i]), float(fo[i])
            eq_open = money + units * o + fut_units * (f_o - fut_entry)
            # spot leg
            want = te * eq_open / o
            delta = want - units
            if abs(delta) * o >= 1e-9 * cash and te != cur_e:
                px = o * (1.0 + spot_costs.slippage * np.sign(delta))
                fee = abs(delta) * px * spot_costs.fee
                money -= delta * px + fee
                units += delta
                fees += fee
                trades += 1
            # futures leg: settle the old short, open the new one
            if th != cur_h:
                if fut_units:
                    px = f_o * (1.0 + fut_costs.slippage)
                    fee = abs(fut_units) * px * fut_costs.fee
                    money += fut_units * (px - fut_entry) - fee
                    fees += fee
                    fut_units = 0.0
                if th > 0:
                    px = f_o * (1.0 - fut_costs.slippage)
                    fut_units = -th * units * o / px
                    fut_entry = px
                    fee = abs(fut_units) * px * fut_costs.fee
                    money -= fee
                    fees += fee
                    trades += 1
            cur_e, cur_h = te, th
        equity[i - start] = money + units * float(sc[i]) + fut_units * (float(fc[i]) - fut_entry)
    return {"equity": equity, "fees_paid": fees, "trades": trades}


@dataclass
class MultiLookahead:
    """Result of :func:`lookahead_check_multi`."""

    family: str
    points: list[int]
    leaks: list[int]

    @property
    def clean(self) -> bool:
        return not self.leaks


def lookahead_check_multi(
    family: StrategyFamily | str,
    series: Mapping[str, pl.DataFrame],
    params: Mapping[str, Any] | None = None,
    *,
    points: int = 20,
    extra: Sequence[str] = (),
) -> MultiLookahead:
    """The engine's truncation test for multi-input families: signals (and the ``meta`` arrays
    named in ``extra``) computed on every series cut at bar ``t`` must equal the full run's."""
    fam = resolve_family(family)
    valid = fam.validate(params or {})
    full = fam.signals_multi(series, valid)
    times = full.meta["open_time"]
    n = len(times)
    first = min(n - 1, max(1, fam.warmup(valid)))
    ts = sorted({int(t) for t in np.linspace(first, n - 1, num=max(1, points))})
    leaks = []
    for t in ts:
        part = fam.signals_multi(_truncate(series, times[t]), valid)
        same = np.array_equal(np.asarray(part.flags), np.asarray(full.flags[: t + 1]))
        for name in extra:
            a, b = np.asarray(part.meta[name]), np.asarray(full.meta[name][: t + 1])
            same &= bool(np.allclose(a, b, equal_nan=True))
        if not same:
            leaks.append(t)
    return MultiLookahead(fam.name, ts, leaks)
