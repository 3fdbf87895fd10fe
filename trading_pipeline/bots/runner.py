"""The bot runner: one process per bot, one step per closed candle, the backtester's strategy code.

Each step (the clock reached a bar's close ``T``):

1. read the assignment (``assignments()``; reloaded whenever its fingerprint changes — an
   invalid one never gets here, the deployment store refused it and the old one stays);
2. mark equity at ``T`` with what was held over the bar (cash + positions × close);
3. ask the risk guard (bots.risk): daily loss, drawdown, HALT → close all / block entries;
4. compute the family's own ``signals()`` (the function the backtester runs) on a trailing
   window ≥ warmup and turn the last bar's flags into a target with the kernel's rule: a long
   position closes on an exit without an entry, a flat symbol opens on an entry without an exit;
   a stop / take-profit the family set at entry closes the position when the closed bar touched
   it (the backtester fills those inside the bar; the runner, which only sees closed bars, at
   the next price — the one place a replay may differ from a backtest, and reconcile lists it);
5. size buys like the kernel (cash of the flat slots, capped by the maximum position size) and
   send market orders with deterministic client order ids (bots.broker.client_order_id), sells
   first; orders are written to the ledger as intents before they are sent;
6. keep one protective stop per position at the price that brings the bot's day to its
   daily-loss limit (``_protect``; the broker rests it: the paper broker fills it inside the
   next bars, a live venue holds a stop-loss order), re-placed when position or equity moves;
   a stop that filled ends the day like the guard (settled by the next step's reconciliation);
7. book the results, the equity mark, risk events and state in ONE ledger transaction.

Multi-input families (bot4, bot5) run through the same step. Hedging reports a target
(``meta["exposure"]`` per bar): the runner holds the symbols while the last bar's target is
positive and sells them when it is zero — a state, so a runner started mid risk-on holds, as
``backtest_multi``'s hedging simulation does. Arbitrage (bots.routing.PAIR_FAMILIES) gives pair
events on two venue-qualified symbols (``binanceus:BTCUSDT``, ``coinbase:BTCUSD``) executed
through a routing broker: on start the runner buys each venue's base inventory (half the
capital per venue, half of that in base, fees paid), then each event buys ``units`` on the
cheap venue and sells them on the dear one, sized from the per-venue balances the ledger's
fills give, as ``simulate_arbitrage`` sizes them. The runner does not move inventory between
venues (no periodic rebalancing: replay.reconcile_pairs lists what that changes).

On start it reconciles: every order the ledger holds as sent but not settled is looked up at the
broker by its client order id (booked if it filled, marked ``not_sent`` if the broker never saw
it), never re-sent blindly. A step already booked is never run again; a step interrupted
half-way is recomputed to the same orders (same ids), and the broker's idempotent ``submit``
returns the first result for any that had gone out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from trading_pipeline.backtest.costs import DEFAULT_MIN_ORDER_VALUE, CostModel
from trading_pipeline.bots import risk as riskmod
from trading_pipeline.bots.assignment import LEGACY_COSTS, Assignment, validate_assignment
from trading_pipeline.bots.broker import (
    Broker,
    CredentialsRefused,
    MarketRules,
    OrderRequest,
    OrderResult,
    client_order_id,
)
from trading_pipeline.bots.candles import CandleSource, bar_ms
from trading_pipeline.bots.clock import Clock
from trading_pipeline.bots.ledger import Ledger, StepRecord, fill_of, split_symbol
from trading_pipeline.bots.lock import RunnerBusy, RunnerLock
from trading_pipeline.bots.routing import (
    INVENTORY,
    PAIR_FAMILIES,
    inventory_qty,
    size_pair,
    venue_costs,
)
from trading_pipeline.bots.spec import CASH, bot_spec, current_fleet
from trading_pipeline.bots.step_line import StepReport, event_names, signal_word
from trading_pipeline.strategies.base import (
    LONG_ENTRY,
    LONG_EXIT,
    SHORT_ENTRY,
    Signals,
    StrategyFamily,
)
from trading_pipeline.strategies.registry import get_family

log = logging.getLogger("trading_pipeline.bots.runner")

FINAL = ("filled", "rejected", "canceled")
ACK_FILE = "ACK_BALANCES"  # beside the ledger: acknowledges a balance divergence
STOP = "stop"  # the reason of the protective daily-loss stop orders (bots.protect)


class AssignmentLike(Protocol):
    """What the runner reads of a bots.assignment.Assignment (read-only)."""

    @property
    def bot(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def symbols(self) -> tuple[str, ...]: ...
    @property
    def interval(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Any]: ...
    @property
    def capital_fraction(self) -> float: ...
    @property
    def risk(self) -> Any: ...
    @property
    def fingerprint(self) -> str: ...


@dataclass(frozen=True)
class CashAssignment:
    """What a bot runs before it has any assignment: nothing (hold cash)."""

    bot: str
    symbols: tuple[str, ...]
    interval: str
    version: int = 0
    family: str = CASH
    params: Mapping[str, Any] = field(default_factory=dict)
    capital_fraction: float = 0.0
    risk: Any = None

    @property
    def fingerprint(self) -> str:
        return "cash"


def signal_window(family: StrategyFamily, params: Mapping[str, Any]) -> int:
    """Trailing bars fed to ``signals()`` each step: enough for the warm-up of every indicator
    (recursive ones like EMA get extra bars so their start no longer matters)."""
    w = int(family.warmup(params))
    return max(3 * w, w + 200, 50)


@dataclass(frozen=True)
class LastSignal:
    """The family's verdict at the last closed bar: flags, and the exits it asks for at entry
    (stop/take-profit as fractions of the entry price, a stop distance in price units)."""

    flags: int
    stop_loss: float | None = None
    take_profit: float | None = None
    stop_distance: float | None = None
    hold: bool | None = None  # a target family's state (hedging): hold the symbol or not
    missed: bool = False  # an exit that fired on a bar the runner did not step (it was down)

    @property
    def enters(self) -> bool:
        if self.hold is not None:
            return self.hold
        return bool(self.flags & LONG_ENTRY) and not self.flags & LONG_EXIT

    @property
    def exits(self) -> bool:
        if self.hold is not None:
            return not self.hold
        return bool(self.flags & LONG_EXIT) and not self.flags & LONG_ENTRY

    def levels(self, entry_price: float) -> list[float | None] | None:
        """``[stop, take_profit]`` prices for a long filled at ``entry_price`` (the kernel's
        rule: the higher of the fractional and the distance stop)."""
        stop = entry_price * (1.0 - self.stop_loss) if self.stop_loss else None
        if self.stop_distance is not None and math.isfinite(self.stop_distance):
            sd = entry_price - self.stop_distance
            stop = sd if stop is None else max(stop, sd)
        tp = entry_price * (1.0 + self.take_profit) if self.take_profit else None
        return None if stop is None and tp is None else [stop, tp]


def _last(sig: Signals, flags: np.ndarray | None = None, *, target: bool = False) -> LastSignal:
    f = sig.flags if flags is None else np.asarray(flags)
    sd = None
    if sig.stop_distance is not None and len(sig.stop_distance):
        sd = float(sig.stop_distance[-1])
    sl, tp = sig.meta.get("stop_loss"), sig.meta.get("take_profit")
    hold = None
    exposure = sig.meta.get("exposure")
    if target and exposure is not None and len(exposure) == len(f):
        hold = bool(float(np.asarray(exposure)[-1]) > 0.0)
    return LastSignal(int(f[-1]), float(sl) if sl else None, float(tp) if tp else None, sd, hold)


def last_signals(
    family: StrategyFamily, params: Mapping[str, Any], bars: Mapping[str, pl.DataFrame]
) -> dict[str, LastSignal]:
    """The last bar's signals per symbol, from the family's own code.

    Single-input families run once per symbol. Multi-input families (``inputs > 1``) get all the
    series at once through ``signals_multi`` (keys: symbols); their ``Signals.meta
    ["flags_by_symbol"]`` (symbol → per-bar flags) says what to do with each symbol, otherwise
    the flags apply to the first symbol. A multi-input family that reports a per-bar target
    (``meta["exposure"]``, hedging) is held while the last bar's target is positive, for every
    symbol its spot flags apply to (entry/exit flags, i.e. not a futures hedge leg).
    """
    out: dict[str, LastSignal] = {}
    if family.inputs > 1:
        usable = {s: b for s, b in bars.items() if b.height}
        if len(usable) < len(bars) or not usable:
            return out
        sig = family.signals_multi(usable, params)
        per = sig.meta.get("flags_by_symbol")
        futures = getattr(sig.meta.get("roles"), "futures", None)
        if isinstance(per, Mapping):
            return {s: _last(sig, f, target=s != futures) for s, f in per.items() if len(f)}
        return {next(iter(usable)): _last(sig, target=True)} if len(sig) else out
    for symbol, b in bars.items():
        if b.height:
            sig = family.signals(b, params)
            if len(sig):
                out[symbol] = _last(sig)
    return out


@dataclass(frozen=True)
class _Step:
    """The step being run: its assignment, the open time of the bar that closed, and now."""

    a: AssignmentLike
    bar_open: int
    now: int

    def cash_after(self, cash: float, results: list[tuple[OrderRequest, OrderResult]]) -> float:
        for req, res in results:
            f = fill_of(req.symbol, req.side, res, self.now)
            if f is not None:
                cash += f.cash_delta
        return cash

    def base_changes(self, results: list[tuple[OrderRequest, OrderResult]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for req, res in results:
            f = fill_of(req.symbol, req.side, res, self.now)
            if f is not None:
                out[req.symbol] = out.get(req.symbol, 0.0) + f.base_delta
        return out


class BotRunner:
    """Runs one bot against a broker, a candle source and a clock (all passed in)."""

    def __init__(
        self,
        bot: str,
        *,
        ledger: Ledger,
        broker: Broker,
        candles: CandleSource,
        clock: Clock,
        assignments: Callable[[], AssignmentLike | None],
        initial_cash: float,
        halt_path: Path | None = None,
        costs: CostModel | None = None,
        min_order_value: float = DEFAULT_MIN_ORDER_VALUE,
        quote: str = "USDT",
        fleet_capital: float | None = None,
        protective_stop: bool = True,
        fleet_halt: Callable[[int], dict[str, Any] | None] | None = None,
        balance_check_every: int = 24,
        on_step: Callable[[StepReport], None] | None = None,
    ) -> None:
        self.spec = bot_spec(bot)
        self.on_step = on_step  # told after every step (``bot run`` prints one line per step)
        self.protective_stop = protective_stop  # False: the daily limit only at bar closes
        # the fleet's shared state: a reason while the fleet's day is over (replay_fleet's guard)
        self.fleet_halt = fleet_halt
        self.balance_check_every = balance_check_every  # bars between balance reconciliations
        self._checked_at: int | None = None
        self._rules: dict[str, MarketRules | None] = {}
        self._stop_refused: dict[str, float] = {}  # symbol -> the quantity a stop was refused for
        self.bot = bot
        self.ledger = ledger
        self.broker = broker
        self.candles = candles
        self.clock = clock
        self.assignments = assignments
        self.halt_path = halt_path
        self._cost_override = costs
        self.costs = costs or CostModel()  # replaced by the assignment's when one is loaded
        self.min_order_value = min_order_value
        self.quote = quote
        # one runner per bot and mode: held for this runner's life, checked before every order
        self.lock = RunnerLock.acquire(ledger.path.parent, what=f"{bot} ({ledger.path.parent})")
        self.ledger.open_account(bot, initial_cash, quote, fleet_capital)
        self._assignment: AssignmentLike | None = None
        self._family: StrategyFamily | None = None
        self._params: dict[str, Any] = {}
        self._funded_version: int | None = None
        self._refused: tuple[str, int] | None = None

    def close(self) -> None:
        """Close the ledger and give the bot's lock back (a restart may then take it)."""
        self.ledger.close()
        self.lock.release()

    # ---- assignment -------------------------------------------------------------------
    def assignment(self) -> AssignmentLike:
        """The assignment in force, reloaded when its fingerprint changed."""
        try:
            new = self.assignments()
        except Exception as exc:  # a broken store must not stop a bot that holds positions
            log.error("%s: cannot read assignment (%s); keeping the one in force", self.bot, exc)
            new = self._assignment
        if new is None:
            new = self._assignment or CashAssignment(
                self.bot, self.spec.symbols, self.spec.interval
            )
        cur = self._assignment
        if cur is None or new.fingerprint != cur.fingerprint or new.version != cur.version:
            family = params = None
            try:
                if isinstance(new, Assignment):  # the deploy gate's validator, on every load
                    validate_assignment(new, others={}, fleet=current_fleet())
                if new.family != CASH:
                    family = get_family(new.family)
                    params = family.validate(new.params or {})
            except Exception as exc:
                if self._refused != (new.fingerprint, new.version):  # said once per file
                    self._refused = (new.fingerprint, new.version)
                    log.error(
                        "%s: assignment v%s refused (%s); keeping the one in force",
                        self.bot,
                        new.version,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    )
                return cur or CashAssignment(self.bot, self.spec.symbols, self.spec.interval)
            if cur is not None:
                log.info(
                    "%s: assignment v%s → v%s (%s)", self.bot, cur.version, new.version, new.family
                )
            self._assignment, self._family, self._params = new, family, dict(params or {})
            self._use_costs(new)
        return self._assignment  # type: ignore[return-value]

    def _use_costs(self, a: AssignmentLike) -> None:
        """Trade with the cost model the assignment's strategy was tuned with (the runner's
        sizing and, for a paper account, the fills); an explicit ``costs`` argument wins. An
        assignment written before assignments carried costs trades at the defaults, logged."""
        if self._cost_override is not None:
            self.costs = self._cost_override
        else:
            model = getattr(a, "cost_model", None)
            self.costs = model if isinstance(model, CostModel) else CostModel()
            if getattr(a, "costs_are_default", False):
                log.warning("%s: assignment v%s: costs %s", self.bot, a.version, LEGACY_COSTS)
        use = getattr(self.broker, "use_costs", None)  # a paper account charges them too
        if callable(use) and not self.pair_mode:  # pairs: each venue's fees are parameters
            use(self.costs)

    # ---- start-up reconciliation --------------------------------------------------------
    def reconcile(self) -> list[str]:
        """Settle every order the ledger holds as sent but not settled, by asking the broker.

        Returns the client order ids it settled. Filled ones are booked (at the time they were
        sent); ones the broker never saw are marked ``not_sent`` (the step that wanted them will
        send them if it runs again).
        """
        settled: list[str] = []
        for row in self.ledger.pending_orders():
            cid, symbol = row["client_order_id"], row["symbol"]
            res = self.broker.fetch_order(cid, symbol)
            req = OrderRequest(cid, symbol, row["side"], float(row["qty"]), reason=row["reason"])
            if res is None:
                self.ledger.mark_status(cid, "not_sent", "broker has no such order")
                log.warning(
                    "%s: order %s was never received by %s", self.bot, cid, self.broker.name
                )
            elif res.status in FINAL:
                at = res.filled_ms if res.filled_ms is not None else int(row["sent_ms"])
                self.ledger.apply_results([(req, res)], fill_ms=at)
                if row["reason"] == STOP and res.status == "filled":
                    log.warning(
                        "%s: daily-loss stop on %s filled %g @ %s",
                        self.bot,
                        symbol,
                        res.filled_qty,
                        res.avg_price,
                    )
                else:
                    log.info("%s: reconciled %s: %s %s", self.bot, cid, res.status, res.filled_qty)
            else:
                continue
            settled.append(cid)
        return settled

    # ---- one step -----------------------------------------------------------------------
    def _send(self, req: OrderRequest, ctx: _Step) -> tuple[OrderRequest, OrderResult]:
        """Send ``req`` unless the ledger already settled it; the intent is written first.

        An order the ledger knows but has not settled is looked up at the broker first; one the
        broker never saw is sent (same id). A broker failure leaves the order ``open`` (fate
        unknown) for the next reconciliation — never a blind re-send.
        """
        if not self.lock.held:
            raise RunnerBusy(f"{self.bot}: the runner lock was released; no order is sent")
        row = self.ledger.order(req.client_order_id)
        if row is not None and row["status"] in FINAL:
            return req, OrderResult(
                req.client_order_id,
                row["status"],
                float(row["filled_qty"]),
                row["avg_price"],
                float(row["fee"]),
                row["fee_currency"],
                row["exchange_order_id"],
                row["status_reason"],
            )
        if row is not None:
            known = self.broker.fetch_order(req.client_order_id, req.symbol)
            if known is not None and known.status in FINAL:
                return req, known
        else:
            self.ledger.record_intents(
                [req], version=ctx.a.version, bar_ms=ctx.bar_open, sent_ms=ctx.now
            )
        try:
            res = self.broker.submit(req)
        except CredentialsRefused:  # refused before anything was placed: halt
            self.ledger.mark_status(req.client_order_id, "not_sent", "credentials refused")
            raise
        except Exception as exc:  # network, venue down: the fate is unknown
            log.error(
                "%s: order %s: %s; left pending", self.bot, req.client_order_id, type(exc).__name__
            )
            return req, OrderResult(
                req.client_order_id, "open", 0.0, None, 0.0, "", None, "unknown"
            )
        if res.status == "rejected":
            log.warning("%s: order %s rejected: %s", self.bot, req.client_order_id, res.reason)
        return req, res

    def step(self, now: int) -> bool:
        """Process the bar that closed at or before ``now`` if not done yet; True if it ran."""
        if self.ledger.pending_orders():  # an order whose fate was unknown: settle it first
            self.reconcile()
        a = self.assignment()
        step_ms = bar_ms(a.interval)
        close_ms = (now // step_ms) * step_ms
        last = self.ledger.last_step_ms()
        if last is not None and close_ms <= last:
            return False
        self._acknowledge(now)
        cash, held = self.ledger.holdings_before(now)
        marks = self._marks(a, now, close_ms, held)
        if marks is None:
            return False
        bars, closes = marks
        exposure = sum(q * closes[s] for s, q in held.items())
        equity = cash + exposure
        decision = self._risk(a, close_ms, equity, exposure)
        self._check_balances(a, close_ms, held, closes, decision)
        # dust (below the venue's step, minimum quantity or value) is flat for the strategy:
        # never sent as an unsellable sell, and the symbol may be bought again
        dust = {s: q for s, q in held.items() if self._dust(s, q, closes.get(s, 0.0))}
        held = {s: q for s, q in held.items() if s not in dust}
        transfer = self._reallocate(a, close_ms, cash, decision)
        cash += transfer[0] if transfer else 0.0
        signals: dict[str, LastSignal] = {}
        pair_flag = 0
        if self._family is not None and not decision.flatten:
            if self.pair_mode:
                pair_flag = last_pair_flag(self._family, self._params, bars, a.symbols)
            else:
                signals = last_signals(self._family, self._params, bars)
        if last is not None and close_ms - last > step_ms and not decision.flatten:
            self._missed_exits(held, bars, last, close_ms, step_ms, signals)
        ctx = _Step(a, close_ms - step_ms, now)
        results = self._exits(ctx, held, signals, bars, decision)
        cash = ctx.cash_after(cash, results)
        for s, q in ctx.base_changes(results).items():
            held[s] = held.get(s, 0.0) + q
        if not decision.block_entries and self.pair_mode:
            results += self._pair_step(ctx, held, pair_flag, decision, cash)
        elif not decision.block_entries:
            entries = self._entries(ctx, held, signals, decision, cash)
            results += entries
            cash = ctx.cash_after(cash, entries)
            for s, q in ctx.base_changes(entries).items():
                held[s] = held.get(s, 0.0) + q
        for s, q in dust.items():
            held[s] = held.get(s, 0.0) + q
        if self.protective_stop and not self.pair_mode:
            moved = transfer[0] if transfer else 0.0
            results += self._protect(ctx, held, closes, cash, equity + moved, decision)
        self.ledger.record_step(
            StepRecord(
                bar_close_ms=close_ms,
                assignment_version=a.version,
                fingerprint=a.fingerprint,
                results=results,
                fill_ms=now,
                equity_ms=close_ms,
                equity=(equity, equity - exposure, exposure),
                risk_events=decision.events,
                state=decision.state,
                transfer=transfer,
            )
        )
        if self.on_step is not None:
            self.on_step(
                StepReport(
                    bot=self.bot,
                    bar_close_ms=close_ms,
                    signals=_signal_words(signals, pair_flag if self.pair_mode else 0),
                    orders=results,
                    positions=dict(held),
                    equity=equity,
                    cash=cash,
                    events=event_names(decision.events),
                )
            )
        return True

    def _missed_exits(
        self,
        held: Mapping[str, float],
        bars: Mapping[str, pl.DataFrame],
        last: int,
        close_ms: int,
        step_ms: int,
        signals: dict[str, LastSignal],
    ) -> None:
        """After a gap in steps (a restart, a stall): a held symbol whose family fired an exit
        (without an entry) on a bar that closed after the last step and before this one is
        sold now, as the step at that bar would have (single-input families; a hedging target
        is a state the current bar already carries)."""
        fam = self._family
        if fam is None or fam.inputs != 1 or self.pair_mode:
            return
        for s in sorted(held):
            b = bars.get(s)
            if b is None or not b.height or (s in signals and signals[s].exits):
                continue
            sig = fam.signals(b, self._params)
            if not len(sig):
                continue
            closed = b["open_time"].dt.epoch("ms").to_numpy() + step_ms
            f = np.asarray(sig.flags)
            hit = (
                (closed > last) & (closed < close_ms) & (f & LONG_EXIT != 0) & (f & LONG_ENTRY == 0)
            )
            if hit.any():
                when = int(closed[np.argmax(hit)])
                log.warning(
                    "%s: %s: an exit fired at %s while the runner was not stepping; selling now",
                    self.bot,
                    s,
                    when,
                )
                signals[s] = LastSignal(LONG_EXIT, missed=True)

    # ---- positions as the exchange sees them ---------------------------------------------------
    def _dust(self, symbol: str, qty: float, price: float) -> bool:
        """Whether ``qty`` of ``symbol`` is dust: nothing, or below the venue's lot step,
        minimum quantity or minimum order value (a broker without rules: only nothing)."""
        if qty <= 1e-12:
            return True
        if symbol not in self._rules:
            get = getattr(self.broker, "market_rules", None)
            try:
                self._rules[symbol] = get(symbol) if callable(get) else None
            except CredentialsRefused:
                raise
            except Exception as exc:  # the venue is down: no rules this time, asked again later
                log.warning("%s: no market rules for %s: %s", self.bot, symbol, exc)
                return False
        rules = self._rules[symbol]
        return rules is not None and rules.is_dust(qty, price)

    def _check_balances(
        self,
        a: AssignmentLike,
        close_ms: int,
        held: Mapping[str, float],
        closes: Mapping[str, float],
        decision: riskmod.RiskDecision,
    ) -> None:
        """On the first step and every ``balance_check_every`` bars: the ledger's positions
        against the account's balances (free + locked). The ledger holding more of a coin than
        the account, by more than dust, is a risk event (``balance_divergence``) that blocks
        entries until acknowledged (:data:`ACK_FILE`, see :meth:`_acknowledge`); exits go on."""
        diverged = self.ledger.get_state_json("diverged")
        if diverged:
            decision.block_entries = True
        step_ms = bar_ms(a.interval)
        due = self._checked_at is None or close_ms - self._checked_at >= (
            self.balance_check_every * step_ms
        )
        totals_of = getattr(self.broker, "total_balances", None) or getattr(
            self.broker, "balances", None
        )
        if not due or self.pair_mode or not callable(totals_of):
            return
        try:
            totals = totals_of()
        except CredentialsRefused:
            raise
        except Exception as exc:  # asked again at the next step
            log.warning("%s: balances unavailable: %s", self.bot, type(exc).__name__)
            return
        self._checked_at = close_ms
        found = {}
        for s in sorted({*held, *a.symbols}):
            if ":" in s:  # a venue-qualified symbol: its venue's account is another broker's
                continue
            px = closes.get(s)
            base, _ = split_symbol(s)
            mine, theirs = held.get(s, 0.0), float(totals.get(base, 0.0))
            gap = mine - theirs
            if px and gap > 1e-9 * max(1.0, mine) and not self._dust(s, gap, px):
                found[s] = {"ledger": mine, "exchange": theirs, "value": gap * px}
        if found and not diverged:
            decision.block_entries = True
            decision.state["diverged"] = found
            decision.events.append(("balance_divergence", found))
            log.error(
                "%s: the ledger holds more than the account (%s); no entry until %s exists",
                self.bot,
                ", ".join(f"{s}: {d['ledger']:g} vs {d['exchange']:g}" for s, d in found.items()),
                self.ledger.path.parent / ACK_FILE,
            )

    def _acknowledge(self, now: int) -> None:
        """An operator's ``ACK_BALANCES`` file beside the ledger acknowledges a divergence: the
        ledger takes the account's quantities of the diverged coins, the block is lifted, the
        event recorded and the file removed."""
        ack = self.ledger.path.parent / ACK_FILE
        diverged = self.ledger.get_state_json("diverged")
        if not diverged or not ack.exists():
            return
        totals_of = getattr(self.broker, "total_balances", None) or self.broker.balances
        totals = totals_of()
        adopt = {s: float(totals.get(split_symbol(s)[0], 0.0)) for s in diverged}
        self.ledger.adopt_positions(adopt, time_ms=now, detail={"was": diverged, "now": adopt})
        ack.unlink(missing_ok=True)
        log.warning("%s: balance divergence acknowledged; the ledger holds %s", self.bot, adopt)

    # ---- the daily-loss stop ------------------------------------------------------------------
    def _resting_stop(self, symbol: str, decision: riskmod.RiskDecision) -> list[Any] | None:
        """``[client order id, qty, stop price]`` of the protective stop resting for ``symbol``."""
        key = f"stop:{symbol}"
        if key in decision.state:
            return decision.state[key]  # type: ignore[no-any-return]
        st = self.ledger.get_state_json(key)
        row = self.ledger.order(st[0]) if st else None
        return st if row is not None and row["status"] in ("submitting", "open") else None

    def _cancel_stop(
        self,
        symbol: str,
        decision: riskmod.RiskDecision,
        out: list[tuple[OrderRequest, OrderResult]],
    ) -> float | None:
        """Cancel ``symbol``'s resting stop (before selling it, or to re-place it); the base it
        sold when it filled first (negative), else None."""
        st = self._resting_stop(symbol, decision)
        cancel = getattr(self.broker, "cancel_order", None)
        if not st or cancel is None:
            return None
        try:
            res = cancel(st[0], symbol)
        except Exception as exc:  # the venue is down: the stop stays; the sell may fail
            log.error("%s: cancel of stop %s: %s", self.bot, st[0], type(exc).__name__)
            return None
        decision.state[f"stop:{symbol}"] = None
        if res is None:
            return None
        req = OrderRequest(st[0], symbol, "sell", float(st[1]), "stop", STOP, float(st[2]))
        out.append((req, res))
        f = fill_of(symbol, "sell", res, self.clock.now_ms())
        return f.base_delta if f is not None else None

    def _protect(
        self,
        ctx: _Step,
        held: Mapping[str, float],
        closes: Mapping[str, float],
        cash: float,
        equity: float,
        decision: riskmod.RiskDecision,
    ) -> list[tuple[OrderRequest, OrderResult]]:
        """Keep one protective stop per position at the price that brings the bot's day to its
        daily-loss limit, exit costs included: every held symbol at the same fraction ``r`` of
        its close, ``r = (day start × (1 - limit) - cash) / ((1 - slip)(1 - fee) × exposure)``.
        A stop whose quantity and price still hold stays; otherwise it is cancelled and placed
        again (new client order id). No stop when the day cannot reach its limit (``r ≤ 0``)."""
        a = ctx.a
        close_ms = ctx.bar_open + bar_ms(a.interval)
        if riskmod.utc_day(close_ms) != riskmod.mark_day(close_ms):
            day_start = equity  # this mark starts the next bar's day
        else:
            day_start = self._day_start(close_ms, decision.state)
        floor = day_start * (1.0 - riskmod.Limits.of(a.risk).daily_loss)
        pos = {
            s: q
            for s, q in held.items()
            if closes.get(s, 0.0) > 0 and not self._dust(s, q, closes[s])
        }
        exposure = sum(q * closes[s] for s, q in pos.items())
        keep = (1.0 - self.costs.slippage) * (1.0 - self.costs.fee)
        r = (floor - cash) / (keep * exposure) if exposure > 0 else 0.0
        out: list[tuple[OrderRequest, OrderResult]] = []
        for s in sorted({*pos, *a.symbols}):
            st = self._resting_stop(s, decision)
            want = (pos[s], closes[s] * min(r, 1.0)) if s in pos and r > 0 else None
            if st is None and want is None:
                continue
            if (
                st is not None
                and want is not None
                and math.isclose(float(st[1]), want[0], rel_tol=1e-9)
                and abs(float(st[2]) / want[1] - 1.0) < 1e-4
            ):
                continue
            if st is not None and self._cancel_stop(s, decision, out) is not None:
                continue  # it sold first: the next step sees the new position
            if want is None or self._stop_refused.get(s) == want[0]:
                continue  # nothing to protect, or the venue refused this very quantity already
            cid = client_order_id(self.bot, a.version, f"{s}-{STOP}", close_ms, "sell")
            req = OrderRequest(cid, s, "sell", want[0], "stop", STOP, want[1])
            sent = self._send(req, ctx)
            out.append(sent)
            if sent[1].status == "open":
                decision.state[f"stop:{s}"] = [cid, want[0], want[1]]
                self._stop_refused.pop(s, None)
            else:  # not asked again until the position changes (logged once)
                self._stop_refused[s] = want[0]
                log.error("%s: protective stop on %s not placed: %s", self.bot, s, sent[1].reason)
        return out

    # ---- two-venue pairs (arbitrage) -------------------------------------------------------
    @property
    def pair_mode(self) -> bool:
        """Whether the assignment in force trades two-venue pair events (bot4's arbitrage)."""
        return self._family is not None and self._family.name in PAIR_FAMILIES

    def _funded(self, a: AssignmentLike, held: Mapping[str, float]) -> bool:
        """Whether the inventory is there: the bot holds base on one of the venues, or this
        assignment version already sent its inventory orders (settled or not: never bought
        twice; a new version with the inventory in place does not buy more; after a risk
        flatten the bot stays in cash until a new assignment)."""
        if self._funded_version == a.version or any(abs(held.get(s, 0.0)) > 0 for s in a.symbols):
            return True
        orders = self.ledger.orders()
        if orders.height == 0:
            return False
        mine = orders.filter(
            (orders["reason"] == INVENTORY)
            & (orders["assignment_version"] == a.version)
            & (orders["status"] != "not_sent")  # the venue never saw it: buy it again
        )
        if mine.height:
            self._funded_version = a.version
        return mine.height > 0

    def _fund(
        self, ctx: _Step, cash: float, decision: riskmod.RiskDecision | None = None
    ) -> list[tuple[OrderRequest, OrderResult]]:
        """Buy each venue's base inventory: of the cash per venue, ``1 - quote_share`` (the
        arbitrage model's pre-funding, ``ArbSettings.quote_share``) goes into base at the
        current price, fee and slippage paid. Nothing when a price is missing (retried at the
        next step)."""
        from trading_pipeline.backtest.multi import ArbSettings

        a = ctx.a
        prices = {s: self.candles.price(s, a.interval, ctx.now) for s in a.symbols}
        if any(p is None or not p > 0 for p in prices.values()):
            log.warning("%s: no price for the inventory at %s; deferred", self.bot, ctx.now)
            return []
        costs = venue_costs(self._params, a.symbols)
        value = cash / len(a.symbols) * (1.0 - ArbSettings().quote_share)
        if decision is not None:
            value = min(value, decision.max_entry_value)
        out = []
        for s in a.symbols:
            px = prices[s]
            assert px is not None
            if value < self.min_order_value:
                continue
            cid = client_order_id(self.bot, a.version, f"{s}-{INVENTORY}", ctx.bar_open, "buy")
            req = OrderRequest(cid, s, "buy", inventory_qty(value, px, costs[s]), reason=INVENTORY)
            out.append(self._send(req, ctx))
        log.info("%s: bought the starting inventory on %s", self.bot, ", ".join(a.symbols))
        return out

    def _fund_at_start(self, now: int) -> None:
        """At start (the replay's first open, or the live ticker): fund the inventory of a pair
        assignment that has none, so the first event trades from the model's balances."""
        a = self.assignment()
        held = self.ledger.positions()
        if not self.pair_mode or self._funded(a, held) or held:
            return  # funded, or positions of another assignment the first step sorts out
        results = self._fund(_Step(a, now, now), self.ledger.cash())
        if results:
            self.ledger.apply_results(results, fill_ms=now)

    def _venue_quote(self, a: AssignmentLike, now: int) -> dict[str, float]:
        """Quote balance per venue symbol before ``now``: an equal share of the starting cash
        and of capital moved since, plus the cash of that venue's fills (the ledger's own
        per-venue account; the broker's balances are the venue's, which a half-done step could
        already have changed)."""
        n = len(a.symbols)
        moved = self.ledger.transfers()
        extra = float(moved.filter(moved["time_ms"] < now)["amount"].sum()) if moved.height else 0.0
        out = {s: (self.ledger.initial_cash() + extra) / n for s in a.symbols}
        fills = self.ledger.fills()
        if fills.height:
            before = fills.filter(fills["time_ms"] < now)
            for s, delta in before.group_by("symbol").agg(pl.col("cash_delta").sum()).iter_rows():
                if s in out:
                    out[s] += float(delta)
        return out

    def _pair_step(
        self,
        ctx: _Step,
        held: Mapping[str, float],
        flag: int,
        decision: riskmod.RiskDecision,
        cash: float,
    ) -> list[tuple[OrderRequest, OrderResult]]:
        """Fund the inventory if that has not happened, then execute the last bar's pair event:
        ``LONG_ENTRY`` buys on the first symbol's venue and sells on the second's,
        ``SHORT_ENTRY`` the reverse; sells first, both at the current price."""
        from trading_pipeline.backtest.multi import ArbSettings

        a = ctx.a
        if not self._funded(a, held):
            return self._fund(ctx, cash, decision)
        if len(a.symbols) != 2 or not flag & (LONG_ENTRY | SHORT_ENTRY):
            return []
        first, second = a.symbols
        buy, sell = (first, second) if flag & LONG_ENTRY else (second, first)
        prices = {s: self.candles.price(s, a.interval, ctx.now) for s in a.symbols}
        if any(p is None or not p > 0 for p in prices.values()):
            log.warning("%s: no price for a leg at %s; event skipped", self.bot, ctx.now)
            return []
        order = size_pair(
            buy,
            sell,
            quote=self._venue_quote(a, ctx.now),
            base=held,
            prices={s: float(p) for s, p in prices.items() if p is not None},
            costs=venue_costs(self._params, a.symbols),
            max_use=float(self._params["max_use"]),
            min_order_value=ArbSettings().min_order_value,
            max_value=decision.max_entry_value,
        )
        if order is None:
            log.info("%s: arbitrage event at %s: no inventory to use", self.bot, ctx.now)
            return []
        out = []
        for s, side in ((order.sell, "sell"), (order.buy, "buy")):
            cid = client_order_id(self.bot, a.version, s, ctx.bar_open, side)  # type: ignore[arg-type]
            req = OrderRequest(cid, s, side, order.units, reason="arbitrage")  # type: ignore[arg-type]
            out.append(self._send(req, ctx))
        return out

    def _reallocate(
        self, a: AssignmentLike, close_ms: int, cash: float, decision: riskmod.RiskDecision
    ) -> tuple[float, str] | None:
        """Move capital when the assignment's fraction changed (``fleet allocate``).

        The bot's capital is its fraction of the fleet capital it was started with, so a change
        from ``f0`` to ``f1`` moves ``(f1 - f0) × fleet capital`` of cash in or out (out: at most
        the free cash). The daily-loss baseline and the drawdown peak move with it, so a
        withdrawal is not mistaken for a loss.
        """
        old = self.ledger.get_state_json("capital_fraction")
        decision.state["capital_fraction"] = float(a.capital_fraction)
        base = self.ledger.meta().get("fleet_capital")
        if old is None or base is None:
            return None
        amount = (float(a.capital_fraction) - float(old)) * float(base)
        amount = max(amount, -cash)
        if abs(amount) < 1e-9:
            return None
        why = f"capital fraction {old} -> {a.capital_fraction}"
        transfer = getattr(self.broker, "transfer", None)
        if transfer is not None and not self.broker.live:  # the paper account moves with it
            transfer(f"{self.bot}-cap-{close_ms}", self.quote, amount)
        decision.state["peak"] = float(decision.state.get("peak", 0.0)) + amount
        day = riskmod.mark_day(close_ms)
        prev = self.ledger.get_state_json("day_adj") or [day, 0.0]
        decision.state["day_adj"] = [day, (prev[1] if prev[0] == day else 0.0) + amount]
        decision.events.append(("capital", {"amount": amount, "reason": why}))
        log.warning("%s: %s: %+.2f %s", self.bot, why, amount, self.quote)
        return amount, why

    def _marks(
        self, a: AssignmentLike, now: int, close_ms: int, held: Mapping[str, float]
    ) -> tuple[dict[str, pl.DataFrame], dict[str, float]] | None:
        """Trailing bars of the assignment's symbols that closed at ``close_ms`` and the close of
        everything held; None when a held symbol has no price (the step waits)."""
        step_ms = bar_ms(a.interval)
        n = signal_window(self._family, self._params) if self._family is not None else 1
        bars: dict[str, pl.DataFrame] = {}
        for s in a.symbols:
            b = self.candles.closed_bars(s, a.interval, now, n)
            if b.height and _close_ms(b, step_ms) == close_ms:
                bars[s] = b
        closes = {s: float(b["close"][-1]) for s, b in bars.items()}
        for s in held:
            if s not in closes:
                b = self.candles.closed_bars(s, a.interval, now, 1)
                if b.height:
                    closes[s] = float(b["close"][-1])
        missing = [s for s in held if s not in closes]
        if missing:
            log.warning("%s: no price for held %s at %s; step skipped", self.bot, missing, close_ms)
            return None
        if not bars and not held and a.family != CASH:
            return None  # no data for this bar (a gap): nothing to decide
        return bars, closes

    def _halt(self, close_ms: int) -> dict[str, Any] | None:
        """The kill switch's reason: the HALT file, else the fleet's daily-loss trip."""
        halt = riskmod.read_halt(self.halt_path) if self.halt_path is not None else None
        if halt is None and self.fleet_halt is not None:
            halt = self.fleet_halt(close_ms)
        return halt

    def _day_start(self, close_ms: int, pending: Mapping[str, Any] | None = None) -> float:
        """The equity the daily-loss limit of the day of the bar closing at ``close_ms`` is
        measured from (capital moved that day is not PnL; ``pending``: this step's state)."""
        day_start = self.ledger.equity_at_or_before(riskmod.mark_day(close_ms) * riskmod.DAY_MS)
        if day_start is None:
            day_start = self.ledger.initial_cash()
        if pending is not None and "day_adj" in pending:
            adj = pending["day_adj"]
        else:
            adj = self.ledger.get_state_json("day_adj")
        if adj and adj[0] == riskmod.mark_day(close_ms):
            day_start += float(adj[1])
        return day_start

    def _risk(
        self, a: AssignmentLike, close_ms: int, equity: float, exposure: float
    ) -> riskmod.RiskDecision:
        day_start = self._day_start(close_ms)
        state = {
            k: self.ledger.get_state_json(k)
            for k in ("peak", "loss_day", "dd_version", "halted")
            if self.ledger.get_state(k) is not None
        }
        decision = riskmod.evaluate(
            close_ms=close_ms,
            equity=equity,
            day_start_equity=day_start,
            exposure=exposure,
            limits=riskmod.Limits.of(a.risk),
            version=a.version,
            state=state,
            halt=self._halt(close_ms),
        )
        since = self.ledger.last_step_ms() or close_ms - bar_ms(a.interval)
        stopped = [
            (f["symbol"], int(f["time_ms"]), float(f["price"]))
            for f in self.ledger.fills_of_reason(STOP, since, close_ms)
        ]
        tripped = [d for k, d in decision.events if k == "daily_loss"]
        if stopped and tripped:  # the guard saw it too: one event, saying the stop sold
            tripped[0]["stop"] = [[s, t, p] for s, t, p in stopped]
        elif stopped and state.get("loss_day") != riskmod.mark_day(close_ms):
            # the exchange-side stop sold at the day's limit: the day is over for entries
            decision.flatten = decision.block_entries = True
            decision.state["loss_day"] = riskmod.mark_day(close_ms)
            decision.events.append(
                (
                    "daily_loss",
                    {
                        "day_start_equity": day_start,
                        "equity": equity,
                        "loss": 1.0 - equity / day_start if day_start > 0 else 0.0,
                        "limit": riskmod.Limits.of(a.risk).daily_loss,
                        "exposure": exposure,
                        "day": riskmod.mark_day(close_ms),
                        "stop": [[s, t, p] for s, t, p in stopped],
                    },
                )
            )
        for kind, detail in decision.events:
            log.warning("%s: risk event %s at %s: %s", self.bot, kind, close_ms, detail)
        return decision

    def _exits(
        self,
        ctx: _Step,
        held: Mapping[str, float],
        signals: Mapping[str, LastSignal],
        bars: Mapping[str, pl.DataFrame],
        decision: riskmod.RiskDecision,
    ) -> list[tuple[OrderRequest, OrderResult]]:
        """Sell what must go: everything on a risk trip, symbols no longer assigned, positions
        whose stop or take-profit (set at entry) the closed bar touched, and positions whose
        last bar has an exit without an entry (the kernel's rule). A resting protective stop is
        cancelled first (the venue locks its quantity)."""
        a = ctx.a
        out: list[tuple[OrderRequest, OrderResult]] = []
        for s, q in sorted(held.items()):
            why = self._exit_reason(a, s, signals.get(s), bars.get(s), decision)
            if why is None:
                continue
            if self.candles.price(s, a.interval, ctx.now) is None:
                log.warning("%s: no price for %s at %s; exit deferred", self.bot, s, ctx.now)
                continue
            stopped = self._cancel_stop(s, decision, out)
            if stopped is not None:  # the stop sold first: that was the exit
                q += stopped
                if q <= 1e-12:
                    continue
            cid = client_order_id(self.bot, a.version, s, ctx.bar_open, "sell")
            out.append(self._send(OrderRequest(cid, s, "sell", q, reason=why), ctx))
            if out[-1][1].status == "filled":
                decision.state[f"levels:{s}"] = None
        return out

    def _exit_reason(
        self,
        a: AssignmentLike,
        symbol: str,
        sig: LastSignal | None,
        bar: pl.DataFrame | None,
        decision: riskmod.RiskDecision,
    ) -> str | None:
        if decision.flatten:
            return "risk"
        if symbol not in a.symbols or self._family is None:
            return "reassigned"
        levels = self.ledger.get_state_json(f"levels:{symbol}")
        if levels and bar is not None and bar.height:
            stop, tp = levels
            if stop is not None and float(bar["low"][-1]) <= stop:
                return "stop"  # checked on the closed bar, filled at the next price
            if tp is not None and float(bar["high"][-1]) >= tp:
                return "take_profit"
        if sig is not None and sig.exits:
            return "missed_exit" if sig.missed else "exit"
        return None

    def _entries(
        self,
        ctx: _Step,
        held: Mapping[str, float],
        signals: Mapping[str, LastSignal],
        decision: riskmod.RiskDecision,
        cash: float,
    ) -> list[tuple[OrderRequest, OrderResult]]:
        """Buy flat symbols whose last bar has an entry without an exit, each with an equal
        share of the cash of the flat slots (one symbol: all of it, like the kernel), capped by
        the maximum position size; below the minimum order value nothing is sent."""
        a = ctx.a
        flat = [s for s in a.symbols if abs(held.get(s, 0.0)) <= 1e-12]
        entering = [s for s in flat if s in signals and signals[s].enters]
        budget = cash / max(1, len(flat))
        out = []
        for s in entering:
            value = min(budget, decision.max_entry_value, cash)
            px = self.candles.price(s, a.interval, ctx.now)
            if px is None or not px > 0:
                log.warning("%s: no price for %s at %s; entry skipped", self.bot, s, ctx.now)
                continue
            if not (value >= self.min_order_value and value > 0):
                log.info("%s: %s entry of %.4f is below the minimum order", self.bot, s, value)
                continue
            qty = value / (1.0 + self.costs.fee) / (px * (1.0 + self.costs.slippage))
            cid = client_order_id(self.bot, a.version, s, ctx.bar_open, "buy")
            req = OrderRequest(cid, s, "buy", qty, reason="entry")
            out.append(self._send(req, ctx))
            cash = ctx.cash_after(cash, out[-1:])
            res = out[-1][1]
            if res.status == "filled" and res.avg_price:
                decision.state[f"levels:{s}"] = signals[s].levels(res.avg_price)
        return out

    # ---- the loop -----------------------------------------------------------------------
    def begin(self) -> int:
        """Reconcile with the broker and fund a pair inventory; the clock's now."""
        self.reconcile()
        now = self.clock.now_ms()
        self._fund_at_start(now)
        return now

    def equity_at(self, now: int) -> float | None:
        """What the step at ``now`` will mark: cash + positions × their last close (orders
        settled at the broker first, a stop that filled inside the bar included); None when a
        held symbol has no price."""
        if self.ledger.pending_orders():
            self.reconcile()
        a = self.assignment()
        cash, held = self.ledger.holdings_before(now)
        value = cash
        for s, q in held.items():
            b = self.candles.closed_bars(s, a.interval, now, 1)
            if not b.height:
                return None
            value += q * float(b["close"][-1])
        return value

    def next_close_ms(self, now: int) -> int | None:
        """The next bar close to step at: the first close AFTER ``now`` (a bar that closed
        before the runner started is history, never traded late)."""
        return self.candles.next_close_ms(self.assignment().interval, now)

    def run(self, *, stop: Callable[[], bool] | None = None, keep_going: bool = False) -> int:
        """Reconcile, then step at every bar close until the clock runs out (replay) or
        ``stop()`` says so; returns the number of steps run.

        ``keep_going`` (live processes): a failing step (venue unreachable, bad data) is logged
        and the bot waits for the next bar instead of dying; the ledger holds whatever that
        step had settled, and the next start or step reconciles the rest. Refused credentials
        (:class:`CredentialsRefused`) always end the run: the error says so in one line.
        """
        try:
            return self._loop(stop, keep_going)
        except CredentialsRefused as exc:
            raise CredentialsRefused(
                f"{self.bot}: {exc}; halted: no order is sent until the keys are fixed and the "
                "bot is started again"
            ) from None

    def _loop(self, stop: Callable[[], bool] | None, keep_going: bool) -> int:
        steps = 0
        now = self.begin()
        while stop is None or not stop():
            nxt = self.next_close_ms(now)
            if nxt is None or not self.clock.sleep_until(nxt):
                break
            now = self.clock.now_ms()
            try:
                steps += int(self.step(now))
            except CredentialsRefused:
                raise  # wrong keys: the bot halts (keep_going or not), nothing more is sent
            except Exception as exc:
                if not keep_going:
                    raise
                log.error("%s: step at %s failed: %s: %s", self.bot, now, type(exc).__name__, exc)
        return steps


def _signal_words(signals: Mapping[str, LastSignal], pair_flag: int) -> dict[str, str]:
    if pair_flag:
        return {"pair": "enter"}
    return {s: signal_word(enters=v.enters, exits=v.exits) for s, v in signals.items()}


def last_pair_flag(
    family: StrategyFamily,
    params: Mapping[str, Any],
    bars: Mapping[str, pl.DataFrame],
    symbols: tuple[str, ...],
) -> int:
    """The pair event at the last closed bar (0 unless both venues have that bar)."""
    if len(symbols) != 2 or any(s not in bars or not bars[s].height for s in symbols):
        return 0
    sig = family.signals_multi({s: bars[s] for s in symbols}, params)
    return int(sig.flags[-1]) & (LONG_ENTRY | SHORT_ENTRY) if len(sig) else 0


def _close_ms(bars: pl.DataFrame, step_ms: int) -> int:
    t = bars["open_time"][-1]
    return int(t.timestamp() * 1000) + step_ms
