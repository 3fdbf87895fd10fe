"""Paper replay of the whole fleet over history, and the reconciliation against the backtester.

:func:`replay_fleet` gives each bot of the fleet in force its share of the capital
(bots/spec.default_split() of $1,000 by default), a paper broker charging the cost model of the
bot's assignment (the fee and slippage its strategy was tuned with), a replay clock and the
history of its symbols, and runs the SAME :class:`~trading_pipeline.bots.runner.BotRunner` a
live bot runs. It returns equity per
bot, fills, risk events, and writes a report (``report.json`` + ``equity.png``) into the given
directory. :func:`reconcile` lists every difference between a replay's paper fills and the
backtester's trades on the same bars and assignment (empty list = they agree).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from trading_pipeline.backtest.costs import CostModel
from trading_pipeline.bots.broker import Broker
from trading_pipeline.bots.candles import CandleSource, FrameCandles, bar_ms
from trading_pipeline.bots.clock import Clock, ReplayClock, from_ms, to_ms
from trading_pipeline.bots.ledger import Ledger
from trading_pipeline.bots.paper import PaperBroker
from trading_pipeline.bots.risk import DAY_MS, EPS, mark_day, utc_day
from trading_pipeline.bots.routing import (
    PAIR_FAMILIES,
    RoutingBroker,
    VenuePrices,
    check_pair,
    is_qualified,
    venue_costs,
    venue_symbol,
)
from trading_pipeline.bots.runner import AssignmentLike, BotRunner, signal_window
from trading_pipeline.bots.spec import CASH, current_fleet, default_split
from trading_pipeline.bots.tuned import TuningWindows, in_sample, tuning_windows
from trading_pipeline.errors import UserInputError
from trading_pipeline.fsutil import atomic_path, atomic_write_text
from trading_pipeline.market.momentum_pick import MomentumPick, momentum_pick
from trading_pipeline.settings import LEDGER_FILE, DataLayout

log = logging.getLogger("trading_pipeline.bots.replay")

FrameLoader = Callable[[tuple[str, ...], str, int], Mapping[str, pl.DataFrame]]
"""(symbols, interval, warmup_bars) → frames per symbol (canonical kline schema)."""


@dataclass
class BotReplay:
    """One bot's replay: its ledger path, equity curve, fills and risk events."""

    bot: str
    family: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    initial: float
    ledger_path: Path | None
    equity: pl.DataFrame
    fills: pl.DataFrame
    risk_events: pl.DataFrame
    note: str = ""
    buy_and_hold: float | None = None  # return of holding the bot's symbols, equal weights
    # the share of the replay inside the tuning windows of the study behind its parameters
    in_sample: dict[str, Any] = field(default_factory=dict)
    # what it was told to run (version, interval, source) and, holding cash, why
    assignment: dict[str, Any] = field(default_factory=dict)
    cash_reason: str | None = None
    momentum_pick: dict[str, Any] | None = None  # a momentum bot's causal top-N at the start

    @property
    def final(self) -> float:
        return float(self.equity["equity"][-1]) if self.equity.height else self.initial


@dataclass
class ReplayResult:
    start: datetime
    end: datetime
    capital: float
    bots: dict[str, BotReplay] = field(default_factory=dict)
    report_json: Path | None = None
    report_png: Path | None = None
    out_dir: Path | None = None
    fleet_events: list[dict[str, Any]] = field(default_factory=list)  # FleetGuard trips

    @property
    def final(self) -> float:
        return sum(b.final for b in self.bots.values())


def check_range(start: datetime, end: datetime) -> None:
    if end <= start:
        raise UserInputError(
            f"replay range is empty: --from {start:%Y-%m-%d} is not before --to {end:%Y-%m-%d}"
        )


@dataclass
class _Lane:
    """One bot of a replay in progress: its runner and what it owns."""

    assignment: AssignmentLike
    runner: BotRunner
    ledger: Ledger
    broker: PaperBroker | RoutingBroker
    clock: ReplayClock
    initial: float
    now: int = 0

    def result(self) -> BotReplay:
        a = self.assignment
        return BotReplay(
            a.bot,
            a.family,
            dict(a.params or {}),
            tuple(a.symbols),
            self.initial,
            self.ledger.path,
            self.ledger.equity(),
            fills_with_reason(self.ledger),
            self.ledger.risk_events(),
        )

    def close(self) -> None:
        self.runner.close()
        self.broker.close()


def _lane(
    assignment: AssignmentLike,
    frames: Mapping[str, pl.DataFrame],
    *,
    start: datetime,
    end: datetime,
    initial_cash: float,
    workdir: Path,
    costs: CostModel | None = None,
    halt_path: Path | None = None,
    durable: bool = False,
    protective_stop: bool = True,
    fleet_halt: Callable[[int], dict[str, Any] | None] | None = None,
) -> _Lane:
    check_range(start, end)
    workdir.mkdir(parents=True, exist_ok=True)
    candles = FrameCandles(frames, end_ms=to_ms(end))
    clock = ReplayClock(to_ms(start), to_ms(end))
    broker = paper_broker(
        assignment, candles, clock, initial_cash=initial_cash, costs=costs, workdir=workdir
    )
    ledger = Ledger(workdir / LEDGER_FILE, durable=durable)
    try:
        runner = BotRunner(
            assignment.bot,
            ledger=ledger,
            broker=broker,
            candles=candles,
            clock=clock,
            assignments=lambda: assignment,
            initial_cash=initial_cash,
            halt_path=halt_path,
            costs=costs,  # None: the runner takes the assignment's (and says when it has none)
            protective_stop=protective_stop,
            fleet_halt=fleet_halt,
        )
    except BaseException:
        ledger.close()
        broker.close()
        raise
    return _Lane(assignment, runner, ledger, broker, clock, initial_cash)


def replay_bot(
    assignment: AssignmentLike,
    frames: Mapping[str, pl.DataFrame],
    *,
    start: datetime,
    end: datetime,
    initial_cash: float,
    workdir: Path,
    costs: CostModel | None = None,
    halt_path: Path | None = None,
    durable: bool = False,
    protective_stop: bool = True,
) -> BotReplay:
    """Replay one bot over ``frames`` between ``start`` and ``end`` (bars opening before
    ``end``); the ledger and the paper broker's book live in ``workdir`` (resumed if present).
    The fills pay the assignment's costs (:func:`assignment_costs`) unless ``costs`` is given.
    ``protective_stop=False`` replays the daily limit as checked at bar closes only."""
    lane = _lane(
        assignment,
        frames,
        start=start,
        end=end,
        initial_cash=initial_cash,
        workdir=workdir,
        costs=costs,
        halt_path=halt_path,
        durable=durable,
        protective_stop=protective_stop,
    )
    try:
        lane.runner.run()
        return lane.result()
    finally:
        lane.close()


class FleetGuard:
    """The fleet's daily-loss limit inside a replay: the bots' equity marks summed at every
    bar close; when the sum falls ``limit`` below the UTC day's starting sum (the sum at 00:00,
    or the starting capital), every bot is halted (positions closed at its next step, no entry)
    until the next UTC day — what the ``fleet_risk_sensor`` does with the HALT file live."""

    def __init__(self, limit: float, capital: float) -> None:
        self.limit = limit
        self._start: dict[int, float] = {}
        self._capital = capital
        self._tripped: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []

    def mark(self, close_ms: int, total: float) -> None:
        day = mark_day(close_ms)
        base = self._start.get(day, self._start[max(self._start)] if self._start else None)
        base = self._capital if base is None else base
        self._start.setdefault(day, base)
        loss = 1.0 - total / base if base > 0 else 0.0
        if day not in self._tripped and loss >= self.limit - EPS:
            detail = {
                "reason": f"fleet daily loss {loss:.2%} >= {self.limit:.0%}",
                "time": from_ms(close_ms).isoformat(),
                "day_start_equity": base,
                "equity": total,
                "loss": loss,
                "limit": self.limit,
            }
            self._tripped[day] = detail
            self.events.append(detail)
            log.warning("fleet: %s at %s", detail["reason"], detail["time"])
        if close_ms % DAY_MS == 0:
            self._start[close_ms // DAY_MS] = total

    def halt(self, close_ms: int) -> dict[str, Any] | None:
        """The trip's reason while the day it tripped lasts (orders filling on the next UTC
        day are free again)."""
        day = mark_day(close_ms)
        trip = self._tripped.get(day)
        return trip if trip is not None and utc_day(close_ms) == day else None


def _run_lanes(
    lanes: Mapping[str, _Lane],
    guard: FleetGuard,
    idle: float,
    progress: Callable[[float, float], None] | None = None,
    span: tuple[int, int] = (0, 0),
) -> None:
    """Step every bot at its bar closes in time order; at each close ``t`` the fleet's equity
    (the bots closing at ``t`` valued as they are about to mark it, the others at their last
    mark) goes to the guard first, so a trip at ``t`` acts in the steps at ``t``."""
    nxt: dict[str, int] = {}
    for name, lane in lanes.items():
        lane.now = lane.runner.begin()
        t = lane.runner.next_close_ms(lane.now)
        if t is not None:
            nxt[name] = t
    while nxt:
        t = min(nxt.values())
        due = []
        for name in [n for n, v in nxt.items() if v == t]:
            lane = lanes[name]
            if lane.clock.sleep_until(t):
                lane.now = lane.clock.now_ms()
                due.append(name)
            else:
                del nxt[name]
        # the fleet's equity at t, as the bots closing at t are about to mark it
        total = idle
        for name, lane in lanes.items():
            value = lane.runner.equity_at(lane.now) if name in due else None
            total += value if value is not None else (lane.ledger.last_equity() or lane.initial)
        guard.mark(t, total)
        if progress is not None and span[1] > span[0]:
            progress(min(t, span[1]) - span[0], span[1] - span[0])
        for name in due:
            lane = lanes[name]
            lane.runner.step(lane.now)
            later = lane.runner.next_close_ms(lane.now)
            if later is None:
                del nxt[name]
            else:
                nxt[name] = later


def assignment_costs(a: AssignmentLike) -> CostModel:
    """The cost model ``a`` trades with (bots.assignment.Assignment.cost_model: the tuned fee and
    slippage; the defaults for an assignment written before assignments carried costs)."""
    model = getattr(a, "cost_model", None)
    return model if isinstance(model, CostModel) else CostModel()


def paper_broker(
    assignment: AssignmentLike,
    candles: CandleSource,
    clock: Clock,
    *,
    initial_cash: float,
    costs: CostModel | None = None,
    workdir: Path,
) -> PaperBroker | RoutingBroker:
    """The paper account of a bot: one USDT account, or one per venue for venue-qualified
    symbols (bot4), see :func:`venue_paper_broker`. Replays and ``bot run --paper`` share it.
    It charges ``costs`` (default: the assignment's, :func:`assignment_costs`)."""
    costs = costs or assignment_costs(assignment)
    if any(is_qualified(s) for s in assignment.symbols):
        return venue_paper_broker(
            assignment, candles, clock, initial_cash=initial_cash, costs=costs, workdir=workdir
        )
    return PaperBroker(
        candles,
        clock,
        interval=assignment.interval,
        starting_balances={"USDT": initial_cash},
        costs=costs,
        path=workdir / "paper.sqlite",
    )


def venue_paper_broker(
    assignment: AssignmentLike,
    candles: CandleSource,
    clock: Clock,
    *,
    initial_cash: float,
    costs: CostModel,
    workdir: Path,
) -> RoutingBroker:
    """One paper account per venue of the assignment's venue-qualified symbols, behind a
    :class:`RoutingBroker`: each starts with an equal share of ``initial_cash`` in its own quote
    currency (USDT on Binance US, USD on Coinbase) and charges its venue's costs (arbitrage:
    the fees its parameters name; otherwise ``costs``). A pair's quotes must be equal or a pair
    named in routing.PAR_QUOTES."""
    symbols = tuple(assignment.symbols)
    per_symbol: dict[str, CostModel] = dict.fromkeys(symbols, costs)
    if assignment.family in PAIR_FAMILIES:
        from trading_pipeline.strategies.registry import get_family

        check_pair(symbols)
        params = get_family(assignment.family).validate(dict(assignment.params or {}))
        per_symbol = venue_costs(params, symbols)
    venues: dict[str, tuple[str, CostModel]] = {}
    for s in symbols:
        vs = venue_symbol(s)
        if vs.venue in venues and venues[vs.venue][0] != vs.quote:
            raise UserInputError(f"{assignment.bot}: two quote currencies on {vs.venue}")
        venues.setdefault(vs.venue, (vs.quote, per_symbol[s]))
    share = initial_cash / len(venues)
    brokers: dict[str, Broker] = {
        v: PaperBroker(
            VenuePrices(candles, v),
            clock,
            interval=assignment.interval,
            starting_balances={quote: share},
            costs=c,
            path=workdir / f"paper-{v}.sqlite",
        )
        for v, (quote, c) in venues.items()
    }
    return RoutingBroker(brokers, quotes={v: q for v, (q, _) in venues.items()})


def fills_with_reason(ledger: Ledger) -> pl.DataFrame:
    """The ledger's fills with each order's ``reason`` (entry, exit, inventory, arbitrage...)."""
    fills = ledger.fills()
    if fills.height == 0:
        return fills
    orders = ledger.orders().select("client_order_id", "reason")
    return fills.join(orders, on="client_order_id", how="left").sort("seq")


def store_loader(
    history_dir: Path, *, start: datetime, end: datetime, market: str = "spot"
) -> FrameLoader:
    """A :data:`FrameLoader` reading the Parquet history store."""
    from trading_pipeline.bots.candles import load_frames

    def load(symbols: tuple[str, ...], interval: str, warmup: int) -> Mapping[str, pl.DataFrame]:
        return load_frames(
            history_dir,
            market=market,
            symbols=symbols,
            interval=interval,
            start=start,
            end=end,
            warmup_bars=warmup,
        )

    return load


def describe_assignment(a: AssignmentLike) -> dict[str, Any]:
    """The assignment as the report shows it: family, symbols, interval, version, where from."""
    lineage = dict(getattr(a, "lineage", None) or {})
    return {
        "family": a.family,
        "symbols": list(a.symbols),
        "interval": a.interval,
        "params": dict(a.params or {}),
        "version": a.version,
        "source": str(lineage.get("source") or ("selector" if lineage.get("reason") else "")),
    }


def start_pick(spec: Any, load: FrameLoader, start: datetime) -> MomentumPick | None:
    """A momentum bot's top-N at the replay's start from bars closed by then (None for other
    bots); a symbol without history is listed as unranked."""
    top = int(getattr(spec, "momentum_top", 0) or 0)
    if top < 1:
        return None
    lookback = int(spec.momentum_lookback)
    frames: dict[str, pl.DataFrame | None] = {}
    for symbol in spec.symbols:
        try:
            frames[symbol] = load((symbol,), spec.interval, lookback + 1).get(symbol)
        except UserInputError:
            frames[symbol] = None
    return momentum_pick(frames, at=start, interval=spec.interval, top=top, lookback=lookback)


def _picked(a: AssignmentLike, pick: MomentumPick | None) -> tuple[AssignmentLike, str | None]:
    """``a`` on the symbols of the pick only (a strategy outside the pick holds cash)."""
    if pick is None or a.family == CASH:
        return a, None
    kept = tuple(s for s in a.symbols if s in pick.picked)
    if kept == tuple(a.symbols):
        return a, None
    if not kept:
        return a, (
            f"its assigned {', '.join(a.symbols)} not in the momentum pick "
            f"({', '.join(pick.picked) or 'none'}): held cash"
        )
    return replace(a, symbols=kept), None  # type: ignore[type-var]


def warmup_bars(a: AssignmentLike) -> int:
    """Bars of history the assignment's signals need before its first step (1 for cash)."""
    if a.family == CASH:
        return 1
    from trading_pipeline.strategies.registry import get_family

    fam = get_family(a.family)
    return signal_window(fam, fam.validate(a.params or {}))


def tuning_of_fleet(
    layout: DataLayout, assignments: Mapping[str, AssignmentLike]
) -> dict[str, TuningWindows]:
    """The tuning windows behind each bot's parameters (the deployed assignment, else its spec
    default) from the layout's Optuna storage; nothing when no storage exists yet (never
    creates one)."""
    # lazy: as in replay_fleet (the assignment module loads the fleet file)
    from trading_pipeline.bots.assignment import default_assignment

    # lazy: the catalog brings optuna (~1 s), needed only when a storage exists
    from trading_pipeline.discovery.catalog import StudyCatalog

    if layout.optuna_storage_override is None and not layout.optuna_journal_path.is_file():
        return {}
    used = {s.name: assignments.get(s.name) or default_assignment(s) for s in current_fleet().bots}
    return tuning_windows(StudyCatalog(layout), used)


def replay_report(target: Path, **replay: Any) -> dict[str, Any]:
    """:func:`replay_fleet` (``replay`` are its arguments but ``out_dir``) into a staging folder
    beside ``target``, renamed over it only once complete, so a failed or killed replay never
    leaves a half report under the final name; returns :func:`summary` of it."""
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        result = replay_fleet(out_dir=staging, **replay)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return summary(result, target)


def replay_fleet(
    *,
    start: datetime,
    end: datetime,
    out_dir: Path,
    load: FrameLoader,
    assignments: Mapping[str, AssignmentLike] | None = None,
    capital: float = 1000.0,
    split: Mapping[str, float] | None = None,
    costs: CostModel | None = None,
    tuning: Mapping[str, TuningWindows] | None = None,
    progress: Callable[[float, float], None] | None = None,
    reasons: Mapping[str, str] | None = None,
) -> ReplayResult:
    """Replay every bot of the fleet in force; write ``report.json`` and ``equity.png`` in
    ``out_dir``.

    ``assignments`` (bot → assignment) default to each bot's spec default
    (bots.assignment.default_assignment). A cash bot whose history is missing holds its cash.
    Each bot pays its assignment's costs (and so does its buy-and-hold benchmark) unless
    ``costs`` overrides them for all. The bots step together in time order and the fleet's
    daily-loss limit (the fleet file's ``daily_loss``) is enforced by a :class:`FleetGuard`.
    ``tuning`` (bot → the windows its parameters were tuned on, :mod:`.tuned`) marks the share
    of the replay that is in-sample for each bot (``in_sample`` of its result). ``progress``
    is told ``(done, total)`` in milliseconds of the replayed span as the bars close.
    ``reasons`` (bot → why it holds cash, :mod:`.cash_reason`) go into each cash bot's line;
    a momentum bot (``momentum_top``) trades only its assigned symbols inside its top-N at
    ``start``, computed from bars closed by then and recorded.
    """
    from trading_pipeline.bots.assignment import default_assignment

    check_range(start, end)
    if not (math.isfinite(capital) and capital > 0):
        raise UserInputError(f"capital must be positive, got {capital}")
    split = dict(split or default_split())
    result = ReplayResult(start, end, capital)
    fleet = current_fleet()
    guard = FleetGuard(fleet.daily_loss, capital)
    lanes: dict[str, _Lane] = {}
    benchmarks: dict[str, float | None] = {}
    extras: dict[str, tuple[dict[str, Any], str | None, dict[str, Any] | None]] = {}
    for spec in fleet.bots:
        a = (assignments or {}).get(spec.name) or default_assignment(spec)
        initial = capital * float(split.get(spec.name, 0.0))
        shown = describe_assignment(a)
        pick = start_pick(spec, load, start)
        a, outside = _picked(a, pick)
        why: str | None = outside
        if why is None and a.family == CASH:
            why = (reasons or {}).get(spec.name)
        try:
            frames = {} if outside else load(tuple(a.symbols), a.interval, warmup_bars(a))
        except UserInputError as exc:
            if a.family != CASH:
                raise
            frames, note = {}, f"no history ({exc}); held cash"
        else:
            note = ""
        if why is None and initial <= 0:
            why = "no capital: its share of the fleet is 0"
        if why is None and (a.family == CASH or not frames):
            why = note or "holds cash (no reason recorded)"
        if not frames or initial <= 0 or outside:
            result.bots[spec.name] = BotReplay(
                spec.name,
                CASH if outside else a.family,
                {},
                tuple(a.symbols),
                initial,
                None,
                _flat_equity(initial, start, end, a.interval),
                pl.DataFrame(),
                pl.DataFrame(),
                note or "holds cash",
                assignment=shown,
                cash_reason=why,
                momentum_pick=pick.to_dict() if pick else None,
            )
            continue
        extras[spec.name] = (shown, why, pick.to_dict() if pick else None)
        lanes[spec.name] = _lane(
            a,
            frames,
            start=start,
            end=end,
            initial_cash=initial,
            workdir=out_dir / spec.name,
            costs=costs,
            fleet_halt=guard.halt,
        )
        benchmarks[spec.name] = benchmark(
            frames, start=start, end=end, interval=a.interval, costs=costs or assignment_costs(a)
        )
    try:
        idle = sum(b.initial for b in result.bots.values())
        _run_lanes(lanes, guard, idle, progress, (to_ms(start), to_ms(end)))
        for name, lane in lanes.items():
            result.bots[name] = lane.result()
            result.bots[name].buy_and_hold = benchmarks[name]
            shown, why, picked = extras[name]
            result.bots[name].assignment = shown
            result.bots[name].cash_reason = why
            result.bots[name].momentum_pick = picked
    finally:
        for lane in lanes.values():
            lane.close()
    result.bots = {s.name: result.bots[s.name] for s in fleet.bots if s.name in result.bots}
    for name, b in result.bots.items():
        b.in_sample = in_sample(start, end, (tuning or {}).get(name))
    result.fleet_events = guard.events
    result.out_dir = out_dir
    write_report(result, out_dir)
    return result


def benchmark(
    frames: Mapping[str, pl.DataFrame],
    *,
    start: datetime,
    end: datetime,
    interval: str,
    costs: CostModel | None = None,
) -> float | None:
    """Buy-and-hold of the symbols (equal weights, same costs) over the replay's bars."""
    from trading_pipeline.backtest.engine import buy_and_hold

    rets = []
    for df in frames.values():
        s, e = backtest_window(df, start, end)
        if e - s >= 2:
            rets.append(
                buy_and_hold(df, costs=costs, interval=interval, start=s, stop=e)["total_return"]
            )
    return sum(rets) / len(rets) if rets else None


def _flat_equity(value: float, start: datetime, end: datetime, interval: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "time": [start, end],
            "equity": [value, value],
            "cash": [value, value],
            "exposure": [0.0, 0.0],
        }
    ).with_columns(pl.col("time").cast(pl.Datetime("ms", "UTC")))


def summary(result: ReplayResult, base: Path | None = None) -> dict[str, Any]:
    """The report as plain JSON-able data: PnL per bot, trades, risk events, fleet totals
    (ledger paths relative to ``base`` when under it)."""
    bots: dict[str, Any] = {}
    for name, b in result.bots.items():
        events = (
            [
                {
                    "time": from_ms(int(r["time_ms"])).isoformat(),
                    "kind": r["kind"],
                    **json.loads(r["detail"]),
                }
                for r in b.risk_events.iter_rows(named=True)
            ]
            if b.risk_events.height
            else []
        )
        fills = (
            [
                {
                    "time": from_ms(int(r["time_ms"])).isoformat(),
                    "symbol": r["symbol"],
                    "side": r["side"],
                    "qty": r["qty"],
                    "price": r["price"],
                    "fee": r["fee"],
                    "client_order_id": r["client_order_id"],
                    "reason": r.get("reason"),
                }
                for r in b.fills.iter_rows(named=True)
            ]
            if b.fills.height
            else []
        )
        bots[name] = {
            "family": b.family,
            "params": b.params,
            "symbols": list(b.symbols),
            "initial": b.initial,
            "final": b.final,
            "pnl": b.final - b.initial,
            "return": b.final / b.initial - 1.0 if b.initial else 0.0,
            "buy_and_hold_return": b.buy_and_hold,
            "fills": fills,
            "risk_events": events,
            "ledger": _rel(b.ledger_path, base, result.out_dir),
            "note": b.note,
            "assignment": b.assignment,
            "cash_reason": b.cash_reason,
            "momentum_pick": b.momentum_pick,
            "in_sample": b.in_sample or in_sample(result.start, result.end, None),
            "in_sample_fraction": (b.in_sample or {}).get("fraction"),
        }
    return {
        "from": result.start.isoformat(),
        "to": result.end.isoformat(),
        "capital": result.capital,
        "final": result.final,
        "pnl": result.final - result.capital,
        "fleet_risk_events": result.fleet_events,
        "in_sample_bots": sorted(n for n, b in bots.items() if b["in_sample_fraction"]),
        "bots": bots,
    }


def _rel(path: Path | None, *bases: Path | None) -> str | None:
    """``path`` relative to the report directory (the replay may have been moved into place)."""
    if path is None:
        return None
    for base in bases:
        if base is not None and path.is_relative_to(base):
            return str(path.relative_to(base))
    return str(path)


def write_report(result: ReplayResult, out_dir: Path) -> ReplayResult:
    """``report.json`` and ``equity.png`` (equity per bot and the fleet) in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(10, 5))
    total: pl.DataFrame | None = None
    for name, b in result.bots.items():
        if b.equity.height:
            share = (b.in_sample or {}).get("fraction")
            mark = f", {share:.0%} IN-SAMPLE" if share else ""
            ax.plot(
                b.equity["time"].to_list(),
                b.equity["equity"].to_list(),
                label=f"{name} ({b.family}{mark})",
            )
            for s_, e_ in (b.in_sample or {}).get("periods", []):  # in-sample: shaded
                x0, x1 = mdates.date2num([datetime.fromisoformat(s_), datetime.fromisoformat(e_)])
                ax.axvspan(float(x0), float(x1), color="grey", alpha=0.08)
    for b in result.bots.values():
        e = b.equity.select(
            pl.col("time").cast(pl.Datetime("ms", "UTC")), pl.col("equity").alias(b.bot)
        ).sort("time")
        total = (
            e if total is None else total.join(e, on="time", how="full", coalesce=True).sort("time")
        )
    if total is not None and total.height:
        total = total.fill_null(strategy="forward").fill_null(strategy="backward")
        fleet = total.select(pl.sum_horizontal(pl.exclude("time")))
        ax.plot(
            total["time"].to_list(), fleet.to_series().to_list(), label="fleet", color="black", lw=2
        )
    ax.set_title(f"paper replay {result.start:%Y-%m-%d} → {result.end:%Y-%m-%d}")
    ax.set_ylabel("equity (USDT)")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    png = out_dir / "equity.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    result.report_png = png
    result.report_json = atomic_write_text(
        out_dir / "report.json", json.dumps(summary(result, out_dir), indent=2, default=str) + "\n"
    )
    return result


# ---- reconciliation against the backtester ---------------------------------------------------
def fills_to_trades(fills: pl.DataFrame, symbol: str | None = None) -> list[dict[str, Any]]:
    """Pair a ledger's fills (buy then sell per symbol) into round trips."""
    out: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    if fills.height == 0:
        return out
    for r in fills.sort("time_ms", "side").iter_rows(named=True):
        if symbol is not None and r["symbol"] != symbol:
            continue
        if r["side"] == "buy":
            open_[r["symbol"]] = {
                "symbol": r["symbol"],
                "entry_ms": int(r["time_ms"]),
                "entry_price": float(r["price"]),
                "units": float(r["qty"]),
                "cost": -float(r["cash_delta"]),
                "exit_ms": None,
                "exit_price": None,
                "pnl": None,
            }
            out.append(open_[r["symbol"]])
        else:
            t = open_.pop(r["symbol"], None)
            if t is None:
                out.append({"symbol": r["symbol"], "orphan_sell_ms": int(r["time_ms"])})
                continue
            t["exit_ms"] = int(r["time_ms"])
            t["exit_price"] = float(r["price"])
            t["pnl"] = float(r["cash_delta"]) - t["cost"]
    return out


def _close(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def reconcile(
    replay_fills: pl.DataFrame,
    backtest_trades: pl.DataFrame,
    *,
    symbol: str | None = None,
    replay_final_equity: float | None = None,
    backtest_final_equity: float | None = None,
    costs: CostModel | None = None,
    rel: float = 1e-9,
) -> list[str]:
    """Every difference between a replay's paper fills and the backtester's trades (from
    ``run_signals(..., detail=True)`` / ``backtest(..., detail=True)``; needs their
    ``entry_time``/``exit_time``): trade count, entry/exit times (bars), prices, units, PnL
    (which includes both fees), and the final equity when both are given. With ``costs`` (the
    assignment's, :func:`assignment_costs`; the backtest should run with the same), every fill's
    fee must be its notional × ``costs.fee``. Empty = identical."""
    diffs: list[str] = []
    if costs is not None:
        diffs += fee_diffs(replay_fills, costs.fee, symbol=symbol, rel=rel)
    mine = fills_to_trades(replay_fills, symbol)
    for t in mine:
        if "orphan_sell_ms" in t:
            diffs.append(f"sell at {from_ms(t['orphan_sell_ms'])} with no position")
    mine = [t for t in mine if "orphan_sell_ms" not in t]
    theirs = list(backtest_trades.iter_rows(named=True)) if backtest_trades.height else []
    if len(mine) != len(theirs):
        diffs.append(f"trade count: replay {len(mine)}, backtest {len(theirs)}")
    for k, (m, b) in enumerate(zip(mine, theirs, strict=False)):
        diffs += _trade_diffs(k, m, b, rel)
    if (
        replay_final_equity is not None
        and backtest_final_equity is not None
        and not _close(replay_final_equity, backtest_final_equity, rel)
    ):
        diffs.append(f"final equity {replay_final_equity!r} vs backtest {backtest_final_equity!r}")
    return diffs


def fee_diffs(
    fills: pl.DataFrame, fee: float, *, symbol: str | None = None, rel: float = 1e-9
) -> list[str]:
    """Every fill whose fee is not ``fee`` × its notional (qty × price)."""
    out: list[str] = []
    if fills.height == 0:
        return out
    for r in fills.iter_rows(named=True):
        if symbol is not None and r["symbol"] != symbol:
            continue
        want = float(r["qty"]) * float(r["price"]) * fee
        if not _close(float(r["fee"]), want, rel):
            out.append(
                f"fill {r['client_order_id']}: fee {r['fee']!r} vs {want!r} (notional × {fee:g})"
            )
    return out


def _trade_diffs(k: int, m: dict[str, Any], b: dict[str, Any], rel: float) -> list[str]:
    """Differences between replay round trip ``m`` and backtest trade ``b`` (number ``k``)."""
    out: list[str] = []
    e_ms = to_ms(b["entry_time"])
    if m["entry_ms"] != e_ms:
        out.append(f"trade {k}: entry at {from_ms(m['entry_ms'])} vs backtest {b['entry_time']}")
    for name, mv, bv in (
        ("entry price", m["entry_price"], b["entry_price"]),
        ("units", m["units"], b["units"]),
    ):
        if not _close(mv, bv, rel):
            out.append(f"trade {k}: {name} {mv!r} vs backtest {bv!r}")
    open_bt = int(b["exit_bar"]) < 0
    if open_bt != (m["exit_ms"] is None):
        out.append(
            f"trade {k}: {'open' if m['exit_ms'] is None else 'closed'} in the replay, "
            f"{'open' if open_bt else 'closed'} in the backtest"
        )
        return out
    if open_bt:
        return out
    if m["exit_ms"] != to_ms(b["exit_time"]):
        out.append(f"trade {k}: exit at {from_ms(m['exit_ms'])} vs backtest {b['exit_time']}")
    for name, mv, bv in (
        ("exit price", m["exit_price"], b["exit_price"]),
        ("pnl", m["pnl"], b["pnl"]),
    ):
        if not _close(mv, bv, rel):
            out.append(f"trade {k}: {name} {mv!r} vs backtest {bv!r}")
    return out


def reconcile_pairs(
    replay_fills: pl.DataFrame,
    backtest_fills: pl.DataFrame | None,
    *,
    times: pl.Series,
    symbols: tuple[str, str],
    costs: Mapping[str, CostModel],
    rebalances: int = 0,
    rel: float = 1e-9,
) -> list[str]:
    """Every difference between bot4's paper fills and ``backtest_multi``'s arbitrage pairs
    (``MultiResult.ledger``: bar, buy_venue, units, buy_price, sell_price) on the same bars.

    ``replay_fills`` need the ``reason`` column (:func:`fills_with_reason`); the inventory buys
    are not pairs. ``times`` are the aligned bars' open times (the backtest's bar indices),
    ``symbols`` venue a then b, ``costs`` each venue's model (the fees a pair should pay),
    ``rebalances`` the backtest's ``rebalances`` total. Each line says what differs and, where
    the two models differ on purpose, why:

    - the replay buys its base inventory with a market order that pays fee and slippage,
      ``backtest_multi`` gets it free at the first open: when that changed the limiting
      balance, the units (and everything after) differ;
    - the runner never moves inventory between venues; a backtest that rebalanced had other
      balances from then on.
    """
    diffs: list[str] = []
    why_units = ""
    inv = replay_fills.filter(pl.col("reason") == "inventory") if replay_fills.height else None
    if inv is not None and inv.height and float(inv["fee"].sum()) > 0:
        why_units = (
            " (the replay's inventory paid fee and slippage when bought; the backtest's is free)"
        )
    if rebalances:
        diffs.append(
            f"backtest rebalanced the inventory {rebalances} time(s); the runner does not "
            "transfer between venues, so balances (and units) differ after the first rebalance"
        )
    mine: list[dict[str, Any]] = []
    if replay_fills.height:
        legs = replay_fills.filter(pl.col("reason") != "inventory").sort("time_ms", "side")
        for (t,), g in legs.group_by(["time_ms"], maintain_order=True):
            buys, sells = g.filter(pl.col("side") == "buy"), g.filter(pl.col("side") == "sell")
            if buys.height != 1 or sells.height != 1:
                diffs.append(
                    f"at {from_ms(int(t))}: {buys.height} buy and {sells.height} sell legs"
                )
                continue
            mine.append(
                {"t": int(t), "buy": buys.row(0, named=True), "sell": sells.row(0, named=True)}
            )
    theirs = list(backtest_fills.iter_rows(named=True)) if backtest_fills is not None else []
    if len(mine) != len(theirs):
        diffs.append(f"pair count: replay {len(mine)}, backtest {len(theirs)}")
    venue = {"a": symbols[0], "b": symbols[1]}
    for k, (m, b) in enumerate(zip(mine, theirs, strict=False)):
        t_bt = to_ms(times[int(b["bar"])])
        buy_sym = venue[str(b["buy_venue"])]
        sell_sym = symbols[1] if buy_sym == symbols[0] else symbols[0]
        if m["t"] != t_bt:
            diffs.append(f"pair {k}: filled at {from_ms(m['t'])} vs backtest {from_ms(t_bt)}")
        if m["buy"]["symbol"] != buy_sym or m["sell"]["symbol"] != sell_sym:
            diffs.append(
                f"pair {k}: bought on {m['buy']['symbol']} / sold on {m['sell']['symbol']} vs "
                f"backtest {buy_sym} / {sell_sym}"
            )
            continue
        units = float(b["units"])
        checks = (
            ("buy price", float(m["buy"]["price"]), float(b["buy_price"]), ""),
            ("sell price", float(m["sell"]["price"]), float(b["sell_price"]), ""),
            ("buy units", float(m["buy"]["qty"]), units, why_units),
            ("sell units", float(m["sell"]["qty"]), units, why_units),
            (
                "buy fee",
                float(m["buy"]["fee"]),
                units * float(b["buy_price"]) * costs[buy_sym].fee,
                why_units,
            ),
            (
                "sell fee",
                float(m["sell"]["fee"]),
                units * float(b["sell_price"]) * costs[sell_sym].fee,
                why_units,
            ),
        )
        for name, mv, bv, why in checks:
            if not _close(mv, bv, rel):
                diffs.append(f"pair {k}: {name} {mv!r} vs backtest {bv!r}{why}")
    return diffs


def backtest_window(frames: pl.DataFrame, start: datetime, end: datetime) -> tuple[int, int]:
    """The bar indices ``[start, stop)`` of ``frames`` a replay over ``start..end`` trades."""
    ms = frames["open_time"].dt.epoch("ms")
    s = int((ms < to_ms(start)).sum())
    e = int((ms < to_ms(end)).sum())
    return s, e


__all__ = [
    "BotReplay",
    "FleetGuard",
    "ReplayResult",
    "assignment_costs",
    "backtest_window",
    "bar_ms",
    "check_range",
    "fee_diffs",
    "fills_to_trades",
    "fills_with_reason",
    "paper_broker",
    "reconcile",
    "reconcile_pairs",
    "replay_bot",
    "replay_fleet",
    "replay_report",
    "store_loader",
    "summary",
    "venue_paper_broker",
    "warmup_bars",
    "write_report",
]
