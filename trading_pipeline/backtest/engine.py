"""The public backtest API: one backtest, a parameter grid, buy-and-hold, the lookahead check.

Discovery, the bots and the CLI call only these functions. Every run evaluates bars
``[start, stop)`` of the frame it is given while indicators use the whole frame, so a
walk-forward fold passes the full history (or a slice with enough warm-up before the fold)
and the fold's indices; signals at bar ``t`` never see bars after ``t``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from trading_pipeline.backtest.costs import CostModel, RiskRules
from trading_pipeline.backtest.fused import (
    Series,
    build_plan,
    cfgs_for,
    reads_volume,
    run_one,
    run_plan,
    same_rule,
)
from trading_pipeline.backtest.kernels import (
    C_BPY,
    C_CASH,
    C_FEE,
    C_FILL_OPEN,
    C_MAX_HOLD,
    C_MIN_VALUE,
    C_SHORT,
    C_SIZE,
    C_SL,
    C_SLIP,
    C_TP,
    C_TRAIL,
    N_CFG,
    simulate,
)
from trading_pipeline.backtest.metrics import METRICS, N_METRICS, TRADE_FIELDS, row_to_dict
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import INTERVAL_MS, bars_per_year
from trading_pipeline.strategies.base import LONG_ENTRY, Signals, StrategyFamily
from trading_pipeline.strategies.compiled import Compiled

__all__ = [
    "BacktestResult",
    "CostModel",
    "GridResult",
    "LookaheadReport",
    "RiskRules",
    "backtest",
    "buy_and_hold",
    "lookahead_check",
    "resolve_family",
    "run_grid",
]

ParamGrid = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Prices:
    """Contiguous float64 OHLC arrays of a validated frame."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def of(cls, bars: pl.DataFrame) -> Prices:
        check_bars(bars)
        cols = [np.ascontiguousarray(bars[c].to_numpy(), dtype=np.float64) for c in _OHLC]
        return cls(*cols)


_OHLC = ("open", "high", "low", "close")


def series_of(bars: pl.DataFrame, p: Prices, *, volume: bool = True) -> Series:
    """The arrays a compiled form reads (volume as ``signals()`` reads it, zeros if absent;
    empty when ``volume`` is false: no form reads it)."""
    if not volume:
        vol = np.empty(0)
    elif "volume" in bars.columns:
        vol = np.ascontiguousarray(bars["volume"].fill_null(0.0).to_numpy(), dtype=np.float64)
    else:
        vol = np.zeros(p.close.shape[0])
    return Series(p.open, p.high, p.low, p.close, vol)


def check_bars(bars: pl.DataFrame) -> None:
    """Refuse frames without OHLC columns, with no rows, or with NaN/null/non-positive prices."""
    missing = [c for c in _OHLC if c not in bars.columns]
    if missing:
        raise UserInputError(f"bars lack column(s) {', '.join(missing)}")
    if bars.height == 0:
        raise UserInputError("no bars to backtest (empty data)")
    bad = bars.select(
        pl.any_horizontal(
            [(pl.col(c).is_null() | pl.col(c).is_nan() | (pl.col(c) <= 0)) for c in _OHLC]
        )
    ).to_series()
    if bad.any():
        idx = int(bad.arg_true()[0])
        where = f" at {bars['open_time'][idx]}" if "open_time" in bars.columns else ""
        raise UserInputError(f"NaN, missing or non-positive price in bar {idx}{where}")


def resolve_family(family: StrategyFamily | str) -> StrategyFamily:
    """A family instance from an instance or a registered name."""
    if isinstance(family, StrategyFamily):
        return family
    from trading_pipeline.strategies.registry import get_family

    return get_family(family)


def _range(n: int, start: int, stop: int | None) -> tuple[int, int]:
    stop = n if stop is None else stop
    if start < 0 or stop > n or start >= stop:
        raise UserInputError(f"bar range [{start}, {stop}) is empty or outside 0..{n}")
    return start, stop


def make_cfg(
    *,
    cash: float,
    costs: CostModel,
    risk: RiskRules,
    interval: str,
    signals: Signals | None = None,
) -> np.ndarray:
    """The kernel's configuration vector; the family's own stop/take-profit apply when the
    risk rules leave them unset."""
    if interval not in INTERVAL_MS:
        raise UserInputError(f"unknown interval {interval!r}; known: {', '.join(INTERVAL_MS)}")
    if not (math.isfinite(cash) and cash > 0):
        raise UserInputError(f"cash must be positive, got {cash}")
    sl = risk.stop_loss
    tp = risk.take_profit
    if signals is not None:
        sl = sl if sl is not None else signals.meta.get("stop_loss")
        tp = tp if tp is not None else signals.meta.get("take_profit")
    cfg = np.empty(N_CFG)
    cfg[C_CASH] = cash
    cfg[C_FEE] = costs.fee
    cfg[C_SLIP] = costs.slippage
    cfg[C_FILL_OPEN] = 1.0 if costs.fill == "open" else 0.0
    cfg[C_SIZE] = risk.size
    cfg[C_SL] = sl if sl else np.nan
    cfg[C_TP] = tp if tp else np.nan
    cfg[C_TRAIL] = np.nan if risk.trailing_stop is None else risk.trailing_stop
    cfg[C_MAX_HOLD] = np.nan if risk.max_holding_bars is None else risk.max_holding_bars
    cfg[C_SHORT] = 1.0 if risk.allow_short else 0.0
    cfg[C_MIN_VALUE] = risk.min_order_value
    cfg[C_BPY] = bars_per_year(interval)
    return cfg


@dataclass
class BacktestResult:
    """Metrics of one backtest; the equity curve (one value per bar of the range, at the
    close) and the trade list when ``detail=True``."""

    family: str
    version: int
    params: dict[str, Any]
    metrics: dict[str, float]
    bars: int
    equity: np.ndarray | None = None
    trades: pl.DataFrame | None = None
    open_time: pl.Series | None = None


def _sd(signals: Signals) -> np.ndarray:
    if signals.stop_distance is None:
        return np.empty(0)
    return np.ascontiguousarray(signals.stop_distance, dtype=np.float64)


def _flags(signals: Signals, n: int) -> np.ndarray:
    flags = np.ascontiguousarray(signals.flags, dtype=np.int8)
    if flags.shape[0] != n:
        raise UserInputError(f"strategy returned {flags.shape[0]} signals for {n} bars")
    return flags


def run_signals(
    bars: pl.DataFrame,
    signals: Signals,
    *,
    cash: float = 1000.0,
    costs: CostModel | None = None,
    risk: RiskRules | None = None,
    interval: str,
    detail: bool = False,
    start: int = 0,
    stop: int | None = None,
    prices: Prices | None = None,
) -> tuple[dict[str, float], np.ndarray | None, pl.DataFrame | None]:
    """Backtest precomputed signals (the bots' paper broker reconciles against this)."""
    p = prices or Prices.of(bars)
    start, stop = _range(p.close.shape[0], start, stop)
    cfg = make_cfg(
        cash=cash,
        costs=costs or CostModel(),
        risk=risk or RiskRules(),
        interval=interval,
        signals=signals,
    )
    out = np.empty(N_METRICS)
    eq = np.empty(stop - start if detail else 0)
    tr = np.empty(((stop - start) // 2 + 2 if detail else 0, len(TRADE_FIELDS)))
    flags = _flags(signals, p.close.shape[0])
    n_tr = simulate(
        p.open, p.high, p.low, p.close, flags, _sd(signals), start, stop, cfg, out, eq, tr
    )
    if not detail:
        return row_to_dict(out), None, None
    return row_to_dict(out), eq, trades_frame(bars, tr, n_tr)


def trades_frame(bars: pl.DataFrame, tr: np.ndarray, n_tr: int) -> pl.DataFrame:
    """The kernel's trade rows as a frame (with entry/exit times when the bars have them)."""
    trades = pl.DataFrame(tr[:n_tr], schema=list(TRADE_FIELDS), orient="row").with_columns(
        pl.col("entry_bar", "exit_bar", "direction").cast(pl.Int64)
    )
    if "open_time" in bars.columns and n_tr:
        times = bars["open_time"]
        trades = trades.with_columns(
            entry_time=pl.Series([times[int(i)] for i in trades["entry_bar"]]),
            exit_time=pl.Series([times[int(i)] if i >= 0 else None for i in trades["exit_bar"]]),
        )
    return trades


def run_compiled(
    bars: pl.DataFrame,
    form: Compiled,
    *,
    cash: float = 1000.0,
    costs: CostModel | None = None,
    risk: RiskRules | None = None,
    interval: str,
    detail: bool = False,
    start: int = 0,
    stop: int | None = None,
    prices: Prices | None = None,
) -> tuple[dict[str, float], np.ndarray | None, pl.DataFrame | None]:
    """:func:`run_signals` of a family's compiled form: lines, flags and the simulation in one
    compiled call, no per-bar Python and no intermediate frame (equal to ``signals()`` +
    :func:`run_signals`; the parity test checks it)."""
    p = prices or Prices.of(bars)
    start, stop = _range(p.close.shape[0], start, stop)
    risk = risk or RiskRules()
    cfg = make_cfg(cash=cash, costs=costs or CostModel(), risk=risk, interval=interval)
    cfg = cfgs_for([form], cfg, risk.stop_loss, risk.take_profit)[0]
    out = np.empty(N_METRICS)
    eq = np.empty(stop - start if detail else 0)
    tr = np.empty(((stop - start) // 2 + 2 if detail else 0, len(TRADE_FIELDS)))
    n_tr = run_one(
        series_of(bars, p, volume=reads_volume([form])), form, cfg, start, stop, out, eq, tr
    )
    if not detail:
        return row_to_dict(out), None, None
    return row_to_dict(out), eq, trades_frame(bars, tr, n_tr)


def backtest(
    bars: pl.DataFrame,
    family: StrategyFamily | str,
    params: Mapping[str, Any],
    *,
    cash: float = 1000.0,
    costs: CostModel | None = None,
    risk: RiskRules | None = None,
    interval: str,
    detail: bool = False,
    start: int = 0,
    stop: int | None = None,
) -> BacktestResult:
    """Backtest one parameter set of ``family`` over bars ``[start, stop)`` (through the
    family's compiled form when it has one, else its ``signals()``)."""
    fam = resolve_family(family)
    p = Prices.of(bars)
    valid = fam.validate(params)
    form = fam.compiled(valid)
    run = run_signals if form is None else run_compiled
    metrics, eq, trades = run(
        bars,
        fam.signals(bars, valid) if form is None else form,  # type: ignore[arg-type]
        cash=cash,
        costs=costs,
        risk=risk,
        interval=interval,
        detail=detail,
        start=start,
        stop=stop,
        prices=p,
    )
    s0, s1 = _range(bars.height, start, stop)
    times = bars["open_time"][s0:s1] if detail and "open_time" in bars.columns else None
    return BacktestResult(fam.name, fam.version, valid, metrics, s1 - s0, eq, trades, times)


@dataclass
class GridResult:
    """Metrics of every combination, columnar: ``metrics[name][k]`` belongs to ``params[k]``."""

    family: str
    version: int
    params: list[dict[str, Any]]
    metrics: dict[str, np.ndarray]
    bars: int
    seconds: float
    fused: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.params)

    def to_polars(self) -> pl.DataFrame:
        cols: dict[str, Any] = {}
        for name in self.params[0] if self.params else []:
            cols[name] = [p[name] for p in self.params]
        cols.update({k: v for k, v in self.metrics.items()})
        return pl.DataFrame(cols)

    def order(self, by: str = "sharpe") -> np.ndarray:
        """Combination indices, best first by ``by`` (NaN last)."""
        v = np.nan_to_num(self.metrics[by], nan=-np.inf)
        return np.argsort(-v, kind="stable")

    def row(self, k: int) -> dict[str, Any]:
        """Parameters and metrics of combination ``k`` (counts as ints)."""
        col = np.array([self.metrics[m][k] for m in METRICS])
        return {"params": self.params[k], **row_to_dict(col)}


def run_grid(
    bars: pl.DataFrame,
    family: StrategyFamily | str,
    grid: ParamGrid,
    *,
    cash: float = 1000.0,
    costs: CostModel | None = None,
    risk: RiskRules | None = None,
    interval: str,
    start: int = 0,
    stop: int | None = None,
) -> GridResult:
    """Metrics of every combination in ``grid`` over bars ``[start, stop)``.

    Families with a compiled form (every built-in) run the whole grid in one compiled call,
    each distinct indicator line computed once and shared; the others (user families) loop
    over combinations in Python with the same compiled simulation. ``seconds`` measures the
    grid evaluation alone.
    """
    fam = resolve_family(family)
    costs = costs or CostModel()
    risk = risk or RiskRules()
    p = Prices.of(bars)
    start, stop = _range(p.close.shape[0], start, stop)
    combos = [fam.validate(g) for g in grid]
    if not combos:
        raise UserInputError("the grid is empty (no combination satisfies the constraints)")
    out = np.empty((len(combos), N_METRICS))
    t0 = time.perf_counter()
    forms = [fam.compiled(c) for c in combos]
    fused = same_rule(forms)
    if fused:
        cfg = make_cfg(cash=cash, costs=costs, risk=risk, interval=interval)
        ok = [f for f in forms if f is not None]
        cfgs = cfgs_for(ok, cfg, risk.stop_loss, risk.take_profit)
        series = series_of(bars, p, volume=reads_volume(ok))
        plan = build_plan(series, ok, [0] * len(ok), p.close.shape[0], cfgs)
        out = run_plan(series, plan, [(start, stop)])[:, 0, :]
    else:
        no_eq = np.empty(0)
        no_tr = np.empty((0, len(TRADE_FIELDS)))
        for k, params in enumerate(combos):
            sig = fam.signals(bars, params)
            cfg = make_cfg(cash=cash, costs=costs, risk=risk, interval=interval, signals=sig)
            flags = _flags(sig, p.close.shape[0])
            simulate(
                p.open,
                p.high,
                p.low,
                p.close,
                flags,
                _sd(sig),
                start,
                stop,
                cfg,
                out[k],
                no_eq,
                no_tr,
            )
    seconds = time.perf_counter() - t0
    metrics = {name: out[:, j].copy() for j, name in enumerate(METRICS)}
    return GridResult(fam.name, fam.version, combos, metrics, stop - start, seconds, fused)


def buy_and_hold(
    bars: pl.DataFrame,
    *,
    cash: float = 1000.0,
    costs: CostModel | None = None,
    interval: str,
    start: int = 0,
    stop: int | None = None,
) -> dict[str, float]:
    """Metrics of buying at the first signal of the range and holding, with the same costs."""
    p = Prices.of(bars)
    start, stop = _range(p.close.shape[0], start, stop)
    flags = np.zeros(p.close.shape[0], np.int8)
    flags[start] = LONG_ENTRY
    metrics, _, _ = run_signals(
        bars,
        Signals(flags),
        cash=cash,
        costs=costs,
        risk=RiskRules(),
        interval=interval,
        start=start,
        stop=stop,
        prices=p,
    )
    return metrics


@dataclass
class LookaheadReport:
    """Result of :func:`lookahead_check`: ``clean`` when every truncated run agreed."""

    family: str
    params: dict[str, Any]
    points: list[int]
    leaks: list[int]
    first_leak_bar: int | None
    first_leak_time: Any = None

    @property
    def clean(self) -> bool:
        return self.first_leak_bar is None

    def describe(self) -> str:
        if self.clean:
            return f"{self.family}: no lookahead at {len(self.points)} truncation points"
        when = f" ({self.first_leak_time})" if self.first_leak_time is not None else ""
        return (
            f"{self.family}: LOOKAHEAD — signals change when future bars are removed; "
            f"first leaking bar {self.first_leak_bar}{when}, {len(self.leaks)} of "
            f"{len(self.points)} truncation points differ"
        )


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise equality treating NaN == NaN."""
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        return (a == b) | (np.isnan(a) & np.isnan(b))
    return np.asarray(a == b)


def lookahead_check(
    family: StrategyFamily | str,
    bars: pl.DataFrame,
    params: Mapping[str, Any] | None = None,
    *,
    points: int = 20,
) -> LookaheadReport:
    """Signals computed on bars truncated at ``t`` must equal the full-data signals up to ``t``
    (freqtrade's lookahead analysis), for ``points`` values of ``t`` spread over the data."""
    fam = resolve_family(family)
    check_bars(bars)
    valid = fam.validate(params or {})
    n = bars.height
    full = fam.signals(bars, valid)
    first = min(n - 1, max(1, fam.warmup(valid)))
    ts = sorted({int(t) for t in np.linspace(first, n - 1, num=max(1, points))})
    leaks: list[int] = []
    first_bar: int | None = None
    for t in ts:
        part = fam.signals(bars.head(t + 1), valid)
        diff = ~_same(np.asarray(part.flags), np.asarray(full.flags[: t + 1]))
        if part.stop_distance is not None and full.stop_distance is not None:
            diff |= ~_same(part.stop_distance, full.stop_distance[: t + 1])
        if diff.any():
            leaks.append(t)
            bar = int(np.argmax(diff))
            first_bar = bar if first_bar is None else min(first_bar, bar)
    when = (
        bars["open_time"][first_bar]
        if first_bar is not None and "open_time" in bars.columns
        else None
    )
    return LookaheadReport(fam.name, valid, ts, leaks, first_bar, when)
