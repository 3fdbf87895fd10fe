"""The fleet seen as one: every bot's ledger summed, the rules that span bots, and re-allocation.

- **View**: positions, cash, equity and PnL per bot and in total, exposure per symbol (net of
  all bots) and gross. Positions are valued at the prices given, else at their cost basis.
- **No opposite positions**: two bots never hold the same symbol in opposite directions
  (one long, one short): that pays fees twice to be flat. :func:`opposite_positions` checks
  ledgers; the assignment-level refusal lives in the deployment store
  (:func:`trading_pipeline.bots.assignment.opposite_assignments`). On spot every family is
  long-only, so today it is a guard for futures/short families, not a frequent event.
- **Allocation** (:func:`allocate`): each bot's capital fraction moves toward its recent
  performance, ``plan × exp(tilt × return)``, renormalised to the plan's total, and clamped to
  ``plan × (1 ± band)`` (default ±50%); the total never exceeds the plan's (100%). Bots without
  history keep their plan fraction. The result is deployed as new assignments.
- **Fleet daily loss** (:func:`check_fleet_loss`): when the fleet's equity falls 10% below the
  sum of the bots' equity at the UTC day's start, the HALT file is written (every runner closes
  its positions and opens nothing) with the reason and an ``until`` at the next UTC midnight;
  a later check lifts a halt that it wrote itself once that time has passed. A halt written by
  a person (``fleet halt``) is only lifted by ``fleet resume``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from trading_pipeline.bots.assignment import (
    COSTS_LINEAGE,
    Assignment,
    TradingCosts,
    default_assignment,
)
from trading_pipeline.bots.deploy_store import DeploymentStore, DeployReport
from trading_pipeline.bots.ledger import Ledger
from trading_pipeline.bots.spec import CASH, Fleet, current_fleet, default_split
from trading_pipeline.errors import UserInputError
from trading_pipeline.handoff import NO_CHAMPION
from trading_pipeline.settings import BotsLayout

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
FLEET_DAILY_LOSS = 0.10
RISK_HALT_BY = "fleet-risk"
MODES = ("paper", "live")


# -- ledgers ---------------------------------------------------------------------------------
def ledger_paths(bots_dir: str | Path, mode: str = "paper") -> dict[str, Path]:
    """The runners' ledgers that exist: ``<bots_dir>/<bot>/<mode>/ledger.sqlite``."""
    if mode not in MODES:
        raise UserInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    out = {}
    for bot in current_fleet().names:
        path = BotsLayout(Path(bots_dir)).ledger_path(bot, mode)
        if path.is_file():
            out[bot] = path
    return out


def open_ledgers(bots_dir: str | Path, mode: str = "paper") -> dict[str, Ledger]:
    return {bot: Ledger(path) for bot, path in ledger_paths(bots_dir, mode).items()}


# -- the view --------------------------------------------------------------------------------
@dataclass(frozen=True)
class BotView:
    bot: str
    initial_cash: float
    cash: float
    positions: dict[str, float]
    exposure: dict[str, float]  # value per symbol
    equity: float
    day_start_equity: float

    @property
    def pnl(self) -> float:
        return self.equity - self.initial_cash

    @property
    def pnl_pct(self) -> float:
        return self.pnl / self.initial_cash if self.initial_cash else 0.0

    @property
    def day_pnl(self) -> float:
        return self.equity - self.day_start_equity


@dataclass(frozen=True)
class Conflict:
    symbol: str
    long: dict[str, float]
    short: dict[str, float]

    def describe(self) -> str:
        return (
            f"{self.symbol}: long in {', '.join(sorted(self.long))}, "
            f"short in {', '.join(sorted(self.short))}"
        )


@dataclass
class FleetView:
    bots: dict[str, BotView] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    priced: bool = False  # exposure at given prices (True) or at cost (False)

    @property
    def equity(self) -> float:
        return sum(b.equity for b in self.bots.values())

    @property
    def initial_cash(self) -> float:
        return sum(b.initial_cash for b in self.bots.values())

    @property
    def pnl(self) -> float:
        return self.equity - self.initial_cash

    @property
    def day_start_equity(self) -> float:
        return sum(b.day_start_equity for b in self.bots.values())

    @property
    def exposure_by_symbol(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for b in self.bots.values():
            for s, v in b.exposure.items():
                out[s] = out.get(s, 0.0) + v
        return dict(sorted(out.items()))

    @property
    def gross_exposure(self) -> float:
        return sum(abs(v) for b in self.bots.values() for v in b.exposure.values())

    @property
    def net_exposure(self) -> float:
        return sum(self.exposure_by_symbol.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "bots": {
                name: {
                    "initial_cash": b.initial_cash,
                    "cash": b.cash,
                    "equity": b.equity,
                    "pnl": b.pnl,
                    "pnl_pct": b.pnl_pct,
                    "day_start_equity": b.day_start_equity,
                    "day_pnl": b.day_pnl,
                    "positions": b.positions,
                    "exposure": b.exposure,
                }
                for name, b in self.bots.items()
            },
            "equity": self.equity,
            "initial_cash": self.initial_cash,
            "pnl": self.pnl,
            "day_start_equity": self.day_start_equity,
            "exposure_by_symbol": self.exposure_by_symbol,
            "gross_exposure": self.gross_exposure,
            "net_exposure": self.net_exposure,
            "exposure_valued_at": "prices" if self.priced else "cost",
            "conflicts": [c.describe() for c in self.conflicts],
        }


def day_start_ms(now_ms: int) -> int:
    return (now_ms // DAY_MS) * DAY_MS


def bot_view(
    bot: str, ledger: Ledger, *, now_ms: int, prices: Mapping[str, float] | None = None
) -> BotView:
    """One bot's numbers from its ledger; equity is the last mark (or cash plus positions at
    the given prices when prices are given, which is fresher than the last bar's mark)."""
    positions = ledger.positions()
    cash = ledger.cash()
    exposure = {}
    for symbol, qty in positions.items():
        if prices is not None and symbol in prices:
            exposure[symbol] = qty * float(prices[symbol])
        else:
            exposure[symbol] = ledger.position_cost(symbol) * (1.0 if qty >= 0 else -1.0)
    initial = ledger.initial_cash()
    if prices is not None and all(s in prices for s in positions):
        equity = cash + sum(exposure.values())
    else:
        last = ledger.last_equity()
        equity = last if last is not None else cash + sum(exposure.values())
    start = ledger.equity_at_or_before(day_start_ms(now_ms))
    if start is None:  # the bot's first day: its starting cash (as the bot's own guard does)
        start = initial if initial > 0 else equity
    return BotView(bot, initial, cash, positions, exposure, equity, float(start))


def opposite_positions(positions: Mapping[str, Mapping[str, float]]) -> list[Conflict]:
    """Symbols held long by one bot and short by another (``positions``: bot → symbol → qty)."""
    longs: dict[str, dict[str, float]] = {}
    shorts: dict[str, dict[str, float]] = {}
    for bot, pos in positions.items():
        for symbol, qty in pos.items():
            if qty > 0:
                longs.setdefault(symbol, {})[bot] = qty
            elif qty < 0:
                shorts.setdefault(symbol, {})[bot] = qty
    return [Conflict(s, longs[s], shorts[s]) for s in sorted(set(longs) & set(shorts))]


def fleet_view(
    ledgers: Mapping[str, Ledger],
    *,
    now_ms: int,
    prices: Mapping[str, float] | None = None,
) -> FleetView:
    view = FleetView(priced=prices is not None)
    for bot in sorted(ledgers):
        view.bots[bot] = bot_view(bot, ledgers[bot], now_ms=now_ms, prices=prices)
    view.conflicts = opposite_positions({b: v.positions for b, v in view.bots.items()})
    for c in view.conflicts:
        log.warning("opposite positions across bots: %s", c.describe())
    return view


# -- allocation ------------------------------------------------------------------------------
def recent_return(ledger: Ledger, *, now_ms: int, days: int) -> float | None:
    """The bot's equity change over the last ``days`` (None with fewer than two marks)."""
    eq = ledger.equity()
    if eq.height < 2:
        return None
    times = eq["time"].dt.epoch("ms").to_list()
    values = eq["equity"].to_list()
    since = now_ms - days * DAY_MS
    # from the last mark at or before the window's start (or the first inside it) to now
    window = [(t, v) for t, v in zip(times, values, strict=True) if since < t <= now_ms]
    before = [(t, v) for t, v in zip(times, values, strict=True) if t <= since]
    points = ([before[-1]] if before else []) + window
    if len(points) < 2 or points[0][1] <= 0:
        return None
    return float(points[-1][1] / points[0][1] - 1.0)


@dataclass(frozen=True)
class AllocationRules:
    """``band``: each bot within ``plan × (1 ± band)``; ``tilt``: how hard returns pull;
    ``days``: the look-back of "recent"."""

    band: float = 0.5
    tilt: float = 2.0
    days: int = 30

    def __post_init__(self) -> None:
        if not (0.0 <= self.band < 1.0):
            raise UserInputError(f"allocation band must be in [0, 1), got {self.band}")
        if not (math.isfinite(self.tilt) and self.tilt >= 0):
            raise UserInputError(f"allocation tilt must be >= 0, got {self.tilt}")
        if self.days < 1:
            raise UserInputError(f"allocation look-back must be at least 1 day, got {self.days}")


def allocate(
    plan: Mapping[str, float],
    returns: Mapping[str, float | None],
    rules: AllocationRules | None = None,
) -> dict[str, float]:
    """New fractions: ``plan × exp(tilt × return)`` scaled to the plan's total, each clamped to
    ``plan × (1 ± band)``: the scale ``s`` solves ``Σ clip(s × w, lo, hi) = total`` (bisection;
    the sum is monotone in ``s`` and the plan itself lies inside the bounds, so it exists). The
    total equals the plan's total, so never over 100%."""
    rules = rules or AllocationRules()
    total = float(sum(plan.values()))
    if total > 1.0 + 1e-9:
        raise UserInputError(f"the plan's fractions total {total:.1%}, over 100%")
    raw = {
        b: f * math.exp(rules.tilt * max(-0.99, float(returns.get(b) or 0.0)))
        for b, f in plan.items()
    }
    lo = {b: f * (1.0 - rules.band) for b, f in plan.items()}
    hi = {b: f * (1.0 + rules.band) for b, f in plan.items()}
    fractions = _fill(raw, lo, hi, total)
    out = {b: round(fractions[b], 10) for b in plan}
    excess = sum(out.values()) - total
    if excess > 0:  # rounding only: take it off the largest
        big = max(out, key=lambda b: out[b])
        out[big] = round(out[big] - excess, 12)
    return out


def _fill(
    weights: Mapping[str, float],
    lo: Mapping[str, float],
    hi: Mapping[str, float],
    total: float,
) -> dict[str, float]:
    def at(scale: float) -> dict[str, float]:
        return {b: min(max(scale * w, lo[b]), hi[b]) for b, w in weights.items()}

    positive = [w for w in weights.values() if w > 0]
    if not positive:
        return {b: (lo[b] + hi[b]) / 2 for b in weights}
    a, z = 0.0, 1.0
    while sum(at(z).values()) < total and z < 1e12:
        z *= 2.0
    for _ in range(200):
        mid = (a + z) / 2
        if sum(at(mid).values()) < total:
            a = mid
        else:
            z = mid
    return at(z)


@dataclass
class AllocationPlan:
    plan: dict[str, float]
    returns: dict[str, float | None]
    fractions: dict[str, float]
    candidates: list[Assignment]
    report: DeployReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "returns": self.returns,
            "fractions": self.fractions,
            "total": sum(self.fractions.values()),
            "deployed": self.report.to_dict() if self.report is not None else None,
        }


def plan_allocation(
    store: DeploymentStore,
    ledgers: Mapping[str, Ledger],
    *,
    now_ms: int,
    rules: AllocationRules | None = None,
    plan: Mapping[str, float] | None = None,
) -> AllocationPlan:
    """New fractions from the ledgers' recent returns, as candidate assignments (each bot's
    current one, or its spec default, with the new fraction and the allocation in its lineage)."""
    rules = rules or AllocationRules()
    plan = dict(plan or default_split())
    returns = {
        b: (recent_return(ledgers[b], now_ms=now_ms, days=rules.days) if b in ledgers else None)
        for b in plan
    }
    fractions = allocate(plan, returns, rules)
    current = store.all_current()
    when = datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(timespec="seconds")
    candidates = []
    for bot, f in fractions.items():
        base = current.get(bot) or default_assignment(bot)
        lineage = {
            **dict(base.lineage),
            "allocation": {
                "at": when,
                "plan": plan[bot],
                "return": returns[bot],
                "band": rules.band,
                "tilt": rules.tilt,
                "days": rules.days,
            },
        }
        candidates.append(base.with_(capital_fraction=f, lineage=lineage))
    return AllocationPlan(plan, returns, fractions, candidates)


def run_allocation(
    store: DeploymentStore,
    ledgers: Mapping[str, Ledger],
    *,
    now_ms: int,
    rules: AllocationRules | None = None,
    dry_run: bool = False,
) -> AllocationPlan:
    """:func:`plan_allocation`, then (unless ``dry_run``) deploy it through the store."""
    result = plan_allocation(store, ledgers, now_ms=now_ms, rules=rules)
    if not dry_run:
        result.report = store.deploy(result.candidates)
        for r in result.report.refused:
            log.warning("allocation for %s refused: %s", r.bot, r.reason)
    return result


# -- fleet risk ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FleetRisk:
    day_start_equity: float
    equity: float
    limit: float
    halted_now: bool = False
    lifted_now: bool = False

    @property
    def loss(self) -> float:
        if self.day_start_equity <= 0:
            return 0.0
        return max(0.0, 1.0 - self.equity / self.day_start_equity)

    @property
    def tripped(self) -> bool:
        return self.loss >= self.limit


def check_fleet_loss(
    store: DeploymentStore,
    ledgers: Mapping[str, Ledger],
    *,
    now_ms: int,
    limit: float = FLEET_DAILY_LOSS,
    prices: Mapping[str, float] | None = None,
) -> FleetRisk:
    """Halt the fleet when its equity is ``limit`` below the UTC day's starting equity; lift a
    halt this check wrote on an earlier day. Manual halts are left alone."""
    if not 0.0 < limit <= 1.0:
        raise UserInputError(f"fleet daily-loss limit must be in (0, 1], got {limit}")
    view = fleet_view(ledgers, now_ms=now_ms, prices=prices)
    halt = store.halted()
    lifted = False
    if halt is not None and halt.get("by") == RISK_HALT_BY:
        until = _parse_time(halt.get("until"))
        if until is not None and now_ms >= until:
            store.resume()
            log.warning("fleet daily-loss halt of %s lifted: a new UTC day", halt.get("day"))
            halt, lifted = None, True
    risk = FleetRisk(view.day_start_equity, view.equity, limit, lifted_now=lifted)
    if risk.tripped and halt is None:
        day = datetime.fromtimestamp(day_start_ms(now_ms) / 1000, UTC)
        reason = (
            f"fleet daily loss {risk.loss:.2%} reached the {limit:.0%} limit: equity "
            f"{risk.equity:.2f} against {risk.day_start_equity:.2f} at {day:%Y-%m-%d} 00:00 UTC"
        )
        store.halt(
            reason,
            by=RISK_HALT_BY,
            extra={
                "loss": risk.loss,
                "limit": limit,
                "day": day.date().isoformat(),
                "until": (day + timedelta(days=1)).isoformat(timespec="seconds"),
                "equity": risk.equity,
                "day_start_equity": risk.day_start_equity,
            },
        )
        log.warning("fleet halted: %s", reason)
        return FleetRisk(
            risk.day_start_equity, risk.equity, limit, halted_now=True, lifted_now=lifted
        )
    return risk


def _parse_time(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() * 1000)


def close_all(ledgers: Sequence[Ledger]) -> None:
    for ledger in ledgers:
        ledger.close()


# -- assignments from selector decisions -------------------------------------------------------
class DecisionLike(Protocol):
    """What :func:`candidates_from_decisions` reads of a selector decision
    (``trading_pipeline.selector.decisions.Decision``)."""

    @property
    def bot(self) -> str: ...
    @property
    def choice(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def series(self) -> str: ...
    @property
    def symbols(self) -> tuple[str, ...]: ...
    @property
    def decided_at(self) -> datetime: ...


def _interval_of(series: str) -> str | None:
    """``spot-BTCUSDT-1h`` → ``1h`` (None when the series names no interval)."""
    from trading_pipeline.market.schema import INTERVAL_MS

    tail = series.rsplit("-", 1)[-1] if series else ""
    return tail if tail in INTERVAL_MS else None


def _decision_costs(
    d: DecisionLike, cur: Assignment | None, cash: bool
) -> tuple[TradingCosts, str]:
    """The costs a decision's candidate was tuned with, and where they came from: a cash
    decision keeps the costs in force (closing pays them); a decision without costs (a model
    trained before candidates carried them) gets the defaults, said in the lineage."""
    fee, slippage = getattr(d, "fee", None), getattr(d, "slippage", None)
    if not cash and fee is not None and slippage is not None:
        return TradingCosts(float(fee), float(slippage)), "the tuned study"
    if cash and cur is not None and cur.costs is not None:
        return cur.costs, "kept from the assignment in force"
    if cash:
        return TradingCosts(), "defaults (cash)"
    return TradingCosts(), "defaults: the selector's candidate carried no cost model"


# A decision holds for one selector window (a day): an older one is never deployed as live.
DECISION_HORIZON = timedelta(days=1)


def split_stale(
    decisions: Mapping[str, DecisionLike],
    *,
    now: datetime | None = None,
    horizon: timedelta = DECISION_HORIZON,
) -> tuple[dict[str, DecisionLike], dict[str, str]]:
    """(fresh decisions, bot → one-line refusal for each decision older than ``horizon``),
    e.g. one recorded by ``select --at 2024-06-01 --record`` for an audit."""
    now = now or datetime.now(UTC)
    fresh: dict[str, DecisionLike] = {}
    stale: dict[str, str] = {}
    for bot, d in decisions.items():
        at = getattr(d, "decided_at", None)
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if at is not None and now - at > horizon:
            stale[bot] = (
                f"decision {getattr(d, 'id', '?')} of {at:%Y-%m-%d %H:%M} UTC is older than its "
                f"horizon ({horizon}): not deployed as live"
            )
        else:
            fresh[bot] = d
    return fresh, stale


def candidates_from_decisions(
    decisions: Mapping[str, DecisionLike],
    current: Mapping[str, Assignment],
    *,
    fractions: Mapping[str, float] | None = None,
    seed_defaults: bool = True,
    lineage: Mapping[str, Any] | None = None,
    fleet: Fleet | None = None,
    now: datetime | None = None,
) -> list[Assignment]:
    """One candidate per bot of ``fleet`` (default: the fleet in force): what its decision in
    force says to run, at its current capital fraction (or ``fractions``, or the plan's), with
    its current risk limits (or its spec's) and the cost model the chosen study was tuned with.
    A bot without a decision keeps what it has; with ``seed_defaults`` a bot with neither gets
    its spec default. A decision the selector made without a champion model (reason "no
    champion") counts as no decision, so a deploy before any model exists keeps each bot's spec
    default instead of moving it to cash. The lineage records the decision and the model behind
    it. A decision older than :data:`DECISION_HORIZON` at ``now`` counts as no decision (see
    :func:`split_stale`; the refusal is logged)."""
    decisions, stale = split_stale(decisions, now=now)
    for bot, why in stale.items():
        log.warning("%s: %s", bot, why)
    fleet = fleet or current_fleet()
    split = fleet.split()
    out = []
    for bot, spec in fleet.by_name.items():
        cur = current.get(bot)
        fraction = (fractions or {}).get(bot)
        if fraction is None:
            fraction = cur.capital_fraction if cur is not None else split[bot]
        d = decisions.get(bot)
        if d is not None and getattr(d, "reason", "") == NO_CHAMPION:
            d = None  # the selector had no model yet: not a choice, the bot keeps its default
        if d is None:
            if cur is None and seed_defaults:
                out.append(
                    default_assignment(
                        spec,
                        capital_fraction=fraction,
                        lineage={"source": "spec-default", **dict(lineage or {})},
                    )
                )
            continue
        cash = d.family == CASH or d.choice == CASH
        costs, costs_from = _decision_costs(d, cur, cash)
        extra = {
            k: getattr(d, k, None)
            for k in (
                "id",
                "model_name",
                "model_version",
                "model_run_id",
                "regime",
                "inputs_hash",
                "reason",
            )
        }
        out.append(
            Assignment(
                bot=bot,
                version=0,
                symbols=tuple(d.symbols) or (cur.symbols if cur else spec.symbols),
                interval=_interval_of(d.series) or (cur.interval if cur else spec.interval),
                family=CASH if cash else d.family,
                family_version=0 if cash else int(d.version),
                params={} if cash else dict(d.params),
                capital_fraction=float(fraction),
                risk=cur.risk if cur is not None else spec.risk,
                lineage={
                    "source": "selector",
                    "choice": d.choice,
                    "decided_at": d.decided_at.isoformat(),
                    **{("decision_id" if k == "id" else k): v for k, v in extra.items()},
                    COSTS_LINEAGE: costs_from,
                    **dict(lineage or {}),
                },
                costs=costs,
            )
        )
    return out


def shared_fleet_halt(
    store: DeploymentStore, bots_dir: str | Path, mode: str, *, limit: float | None = None
) -> Callable[[int], dict[str, Any] | None]:
    """A runner's view of the fleet's shared state: at every step it reads every bot's ledger
    under ``bots_dir``, and when the fleet is ``limit`` (default: the fleet file's) below the UTC
    day's start it writes the HALT file every runner obeys and returns its reason — so the fleet
    limit holds without the Dagster sensor. A failure to read the fleet never stops the bot."""

    def halt(now_ms: int) -> dict[str, Any] | None:
        ledgers = open_ledgers(bots_dir, mode)
        try:
            check_fleet_loss(
                store,
                ledgers,
                now_ms=now_ms,
                limit=limit if limit is not None else current_fleet().daily_loss,
            )
            return store.halted()
        except Exception as exc:  # the bot keeps its own limits; the sensor still watches
            log.error("fleet daily-loss check failed (%s); the bot's own limits still hold", exc)
            return None
        finally:
            for ledger in ledgers.values():
                ledger.close()

    return halt
