"""What a bot should run: its assignment, and the checks an assignment must pass to be deployed.

An assignment is the whole instruction to one bot (symbols, bar interval, strategy family and
version, parameters, capital fraction, risk limits, and the cost model the strategy was tuned
with: fee and slippage, which the runner, the paper broker and the replay charge) plus its lineage (which selector model,
MLflow run and data produced it). The runner compares :attr:`Assignment.fingerprint` to know
whether what it should *do* changed; lineage and timestamps are not part of it, so a new model
version that makes the same choice does not restart anything.

:func:`validate_assignment` is the gate in front of the deployment store: everything it refuses
is refused with a one-line reason, and the bot keeps the assignment it has.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from trading_pipeline.backtest.costs import DEFAULT_FEE, DEFAULT_SLIPPAGE_BPS, CostModel
from trading_pipeline.bots.fleet_file import FRACTION_TOLERANCE
from trading_pipeline.bots.limits import RiskLimits
from trading_pipeline.bots.spec import CASH, BotSpec, Fleet, current_fleet
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import INTERVAL_MS
from trading_pipeline.strategies.registry import get_family

__all__ = [
    "COSTS_LINEAGE",
    "FRACTION_TOLERANCE",
    "LEGACY_COSTS",
    "MAX_COST",
    "Assignment",
    "RiskLimits",
    "TradingCosts",
    "default_assignment",
    "fleet_total",
    "opposite_assignments",
    "sides",
    "utc_now_iso",
    "validate_assignment",
]

MAX_COST = 0.05  # a fee or slippage of 5% per side is a typo, not a market
COSTS_LINEAGE = "costs"  # the lineage key saying where an assignment's costs came from
LEGACY_COSTS = (
    "defaults (fee 0.001, slippage 2 bps): this assignment was written before assignments "
    "carried the cost model they were tuned with"
)


@dataclass(frozen=True)
class TradingCosts:
    """The cost model a strategy was tuned with, per side, as fractions of the notional:
    ``fee`` (0.001 = 0.1%) and ``slippage`` against the trader (0.0002 = 2 bps)."""

    fee: float = DEFAULT_FEE
    slippage: float = DEFAULT_SLIPPAGE_BPS / 10_000.0

    def problems(self) -> list[str]:
        out = []
        for name in ("fee", "slippage"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                out.append(f"cost {name} must be a finite number, got {v!r}")
            elif not 0.0 <= float(v) < MAX_COST:
                out.append(f"cost {name}={v} must be in [0, {MAX_COST})")
        return out

    def model(self) -> CostModel:
        """The backtester's :class:`CostModel` (fills at the next open, as the runner's)."""
        return CostModel(fee=float(self.fee), slippage_bps=float(self.slippage) * 10_000.0)

    @classmethod
    def of(cls, model: CostModel) -> TradingCosts:
        return cls(fee=float(model.fee), slippage=float(model.slippage))

    def to_dict(self) -> dict[str, float]:
        return {"fee": float(self.fee), "slippage": float(self.slippage)}

    @classmethod
    def from_dict(cls, data: Any) -> TradingCosts:
        if not isinstance(data, Mapping):
            raise UserInputError(f"costs must be an object with fee and slippage, got {data!r}")
        unknown = sorted(set(data) - {"fee", "slippage"})
        if unknown:
            raise UserInputError(f"unknown cost {unknown[0]!r}")
        if "fee" not in data or "slippage" not in data:
            raise UserInputError(f"costs need both fee and slippage, got {dict(data)}")
        try:
            return cls(fee=float(data["fee"]), slippage=float(data["slippage"]))
        except (TypeError, ValueError):
            raise UserInputError(f"costs must be numbers, got {dict(data)}") from None


@dataclass(frozen=True)
class Assignment:
    """One bot's instruction. ``family == "cash"`` means hold nothing (close what is held).

    ``version`` is set by the deployment store (previous + 1 when the fingerprint changes);
    ``created_at`` is an ISO-8601 UTC timestamp.
    """

    bot: str
    version: int
    symbols: tuple[str, ...]
    interval: str
    family: str
    family_version: int
    params: Mapping[str, Any]
    capital_fraction: float
    risk: RiskLimits = field(default_factory=RiskLimits)
    lineage: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = ""
    costs: TradingCosts | None = None  # None only in files written before costs were recorded

    @property
    def is_cash(self) -> bool:
        return self.family == CASH

    @property
    def cost_model(self) -> CostModel:
        """The costs to trade with: the assignment's own, or the defaults for an assignment
        written before assignments carried costs (see :attr:`costs_are_default`)."""
        return (self.costs or TradingCosts()).model()

    @property
    def costs_are_default(self) -> bool:
        """True for an assignment that carries no cost model (written before the field)."""
        return self.costs is None

    @property
    def fingerprint(self) -> str:
        """A hash of what the bot should run (not of lineage, version or time)."""
        what = {
            "symbols": list(self.symbols),
            "interval": self.interval,
            "family": self.family,
            "family_version": self.family_version,
            "params": dict(self.params),
            "capital_fraction": round(float(self.capital_fraction), 12),
            "risk": asdict(self.risk),
        }
        if self.costs is not None:  # absent from older files: their fingerprint stays the same
            what["costs"] = self.costs.to_dict()
        blob = json.dumps(what, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "bot": self.bot,
            "version": self.version,
            "symbols": list(self.symbols),
            "interval": self.interval,
            "family": self.family,
            "family_version": self.family_version,
            "params": dict(self.params),
            "capital_fraction": self.capital_fraction,
            "risk": asdict(self.risk),
            "lineage": dict(self.lineage),
            "created_at": self.created_at,
            "fingerprint": self.fingerprint,
            **({} if self.costs is None else {"costs": self.costs.to_dict()}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assignment:
        """An assignment from its JSON form. One without ``costs`` (written before assignments
        carried them) keeps ``costs=None``: it trades at the defaults (:attr:`cost_model`) and
        the runner logs :data:`LEGACY_COSTS`; a re-deploy writes the defaults into it, and its
        lineage says so."""
        costs = None if data.get("costs") is None else TradingCosts.from_dict(data["costs"])
        try:
            return cls(
                bot=str(data["bot"]),
                version=int(data.get("version", 0)),
                symbols=tuple(str(s) for s in data.get("symbols", ())),
                interval=str(data["interval"]),
                family=str(data["family"]),
                family_version=int(data.get("family_version", 0)),
                params=dict(data.get("params") or {}),
                capital_fraction=float(data["capital_fraction"]),
                risk=RiskLimits.from_dict(data.get("risk")),
                lineage=dict(data.get("lineage") or {}),
                created_at=str(data.get("created_at", "")),
                costs=costs,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserInputError(f"not an assignment: {type(exc).__name__} {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> Assignment:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"assignment is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise UserInputError("assignment JSON must be an object")
        return cls.from_dict(data)

    def with_(self, **changes: Any) -> Assignment:
        return replace(self, **changes)


def utc_now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")


def default_assignment(
    spec: BotSpec | str,
    *,
    capital_fraction: float | None = None,
    lineage: Mapping[str, Any] | None = None,
    created_at: str = "",
) -> Assignment:
    """The assignment a bot runs before any selector decision: its spec's default family and
    parameters (cash for bots whose strategy has not arrived), on all its symbols."""
    spec = current_fleet().bot(spec) if isinstance(spec, str) else spec
    family, family_version = spec.default_family, 0
    params: dict[str, Any] = {}
    if family != CASH:
        fam = get_family(family)
        family_version = fam.version
        params = fam.validate(dict(spec.default_params))
    return Assignment(
        bot=spec.name,
        version=0,
        symbols=spec.symbols,
        interval=spec.interval,
        family=family,
        family_version=family_version,
        params=params,
        capital_fraction=(spec.capital_fraction if capital_fraction is None else capital_fraction),
        risk=spec.risk,
        lineage=dict(lineage or {"source": "spec-default"}),
        created_at=created_at,
        costs=TradingCosts(),
    )


def _check_strategy(a: Assignment, spec: BotSpec) -> dict[str, Any]:
    """The validated parameters (defaults filled), or UserInputError."""
    if a.family == CASH:
        if a.params:
            raise UserInputError(f"{a.bot}: cash takes no parameters, got {sorted(a.params)}")
        return {}
    if not spec.allows(a.family):
        raise UserInputError(
            f"{a.bot}: strategy {a.family!r} is not allowed for this bot "
            f"(allowed: {', '.join((*spec.families, CASH))})"
        )
    try:
        fam = get_family(a.family)
    except UserInputError:
        raise UserInputError(f"{a.bot}: unknown strategy {a.family!r}") from None
    if a.family_version != fam.version:
        raise UserInputError(
            f"{a.bot}: strategy {a.family} v{a.family_version} is not available "
            f"(the code has v{fam.version})"
        )
    try:
        return fam.validate(dict(a.params))
    except UserInputError as exc:
        raise UserInputError(
            f"{a.bot}: {a.family} parameters outside the search space: {exc}"
        ) from None


def _check_symbols(a: Assignment, spec: BotSpec) -> None:
    if len(set(a.symbols)) != len(a.symbols):
        raise UserInputError(f"{a.bot}: duplicate symbols in {list(a.symbols)}")
    if not a.symbols and a.family != CASH:
        raise UserInputError(f"{a.bot}: a strategy needs at least one symbol")
    outside = [s for s in a.symbols if s not in spec.symbols]
    if outside:
        raise UserInputError(
            f"{a.bot}: symbol {outside[0]} is not in the bot's spec ({', '.join(spec.symbols)})"
        )


def sides(a: Assignment) -> dict[str, frozenset[str]]:
    """The directions ``a`` may hold per symbol: long on spot, short too only when its
    parameters enable it (``allow_short``); cash holds nothing."""
    if a.family == CASH:
        return {}
    dirs = frozenset({"long", "short"}) if a.params.get("allow_short") else frozenset({"long"})
    return {s: dirs for s in a.symbols}


def opposite_assignments(a: Assignment, others: Mapping[str, Assignment]) -> str | None:
    """Why ``a`` could end up opposite another bot on a symbol (None when it cannot): the
    fleet rule "bots never hold opposite positions in the same symbol", checked before deploy."""
    mine = sides(a)
    for bot, other in sorted(others.items()):
        if bot == a.bot:
            continue
        for symbol, theirs in sides(other).items():
            if symbol not in mine:
                continue
            if ("short" in mine[symbol] and "long" in theirs) or (
                "long" in mine[symbol] and "short" in theirs
            ):
                return (
                    f"{a.bot}: could hold {symbol} opposite {bot} "
                    "(bots never hold opposite positions in the same symbol)"
                )
    return None


def fleet_total(fractions: Mapping[str, float]) -> float:
    return float(sum(fractions.values()))


def validate_assignment(
    a: Assignment, *, others: Mapping[str, Assignment], fleet: Fleet | None = None
) -> Assignment:
    """``a`` with its parameters normalised (defaults filled, types coerced), or a one-line
    :class:`UserInputError` naming why it cannot be deployed.

    ``others`` are the assignments the other bots will hold (an entry for ``a.bot`` itself is
    ignored); the fractions of all of them plus ``a``'s must not exceed 100%. ``fleet`` is the
    fleet ``a`` must fit (default: the fleet in force). The deployment store calls this before
    writing; a runner may call it again on every load (``others={}`` when it only knows its own).
    An assignment without costs gets the defaults, and its lineage says so.
    """
    spec = (fleet or current_fleet()).bot(a.bot)
    params = _check_strategy(a, spec)
    _check_symbols(a, spec)
    if a.interval not in INTERVAL_MS:
        raise UserInputError(f"{a.bot}: unknown bar interval {a.interval!r}")
    if a.interval != spec.interval:
        raise UserInputError(
            f"{a.bot}: bar interval {a.interval!r} is not the bot's ({spec.interval!r})"
        )
    f = a.capital_fraction
    if (
        isinstance(f, bool)
        or not isinstance(f, int | float)
        or not math.isfinite(f)
        or not 0.0 <= f <= 1.0
    ):
        raise UserInputError(f"{a.bot}: capital fraction {f!r} must be in [0, 1]")
    problems = a.risk.problems()
    if problems:
        raise UserInputError(f"{a.bot}: {problems[0]}")
    costs, lineage = a.costs, dict(a.lineage)
    if costs is None:
        costs = TradingCosts()
        lineage.setdefault(COSTS_LINEAGE, "defaults: the candidate carried no cost model")
    problems = costs.problems()
    if problems:
        raise UserInputError(f"{a.bot}: {problems[0]}")
    fractions = {b: o.capital_fraction for b, o in others.items() if b != a.bot}
    fractions[a.bot] = float(f)
    total = fleet_total(fractions)
    if total > 1.0 + FRACTION_TOLERANCE:
        raise UserInputError(
            f"{a.bot}: capital fractions of all bots would total {total:.1%} (over 100%): "
            + ", ".join(f"{b} {v:.1%}" for b, v in sorted(fractions.items()))
        )
    return replace(
        a,
        params=params,
        capital_fraction=float(f),
        costs=TradingCosts(float(costs.fee), float(costs.slippage)),
        lineage=lineage,
    )
