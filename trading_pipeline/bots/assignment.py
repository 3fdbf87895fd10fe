"""What a bot should run: its assignment, and the checks an assignment must pass to be deployed.

An assignment is the whole instruction to one bot (symbols, bar interval, strategy family and
version, parameters, capital fraction, risk limits) plus its lineage (which selector model,
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

from trading_pipeline.bots.spec import CASH, BotSpec, bot_spec, default_split
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import INTERVAL_MS
from trading_pipeline.strategies.registry import get_family

FRACTION_TOLERANCE = 1e-9  # fractions are floats: 0.3 + 0.25 + 0.25 + 0.15 + 0.05 may exceed 1


@dataclass(frozen=True)
class RiskLimits:
    """A bot's limits, each a fraction: the day's loss against the UTC day's starting equity that
    closes everything until the next day, the largest single position against equity, and the
    drawdown from the peak that stops new entries until a new assignment arrives."""

    daily_loss: float = 0.10
    max_position_fraction: float = 1.0
    max_drawdown: float = 0.25

    def problems(self) -> list[str]:
        out = []
        for name, value in asdict(self).items():
            if not isinstance(value, int | float) or not math.isfinite(value):
                out.append(f"risk limit {name} must be a number, got {value!r}")
            elif not 0.0 < float(value) <= 1.0:
                out.append(f"risk limit {name}={value} must be in (0, 1]")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RiskLimits:
        data = dict(data or {})
        unknown = sorted(set(data) - {"daily_loss", "max_position_fraction", "max_drawdown"})
        if unknown:
            raise UserInputError(f"unknown risk limit {unknown[0]!r}")
        try:
            return cls(**{k: float(v) for k, v in data.items()})
        except (TypeError, ValueError):
            raise UserInputError(f"risk limits must be numbers, got {data}") from None


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

    @property
    def is_cash(self) -> bool:
        return self.family == CASH

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
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assignment:
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
    spec = bot_spec(spec) if isinstance(spec, str) else spec
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
        capital_fraction=(
            default_split()[spec.name] if capital_fraction is None else capital_fraction
        ),
        risk=RiskLimits(),
        lineage=dict(lineage or {"source": "spec-default"}),
        created_at=created_at,
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


def validate_assignment(a: Assignment, *, others: Mapping[str, Assignment]) -> Assignment:
    """``a`` with its parameters normalised (defaults filled, types coerced), or a one-line
    :class:`UserInputError` naming why it cannot be deployed.

    ``others`` are the assignments the other bots will hold (an entry for ``a.bot`` itself is
    ignored); the fractions of all of them plus ``a``'s must not exceed 100%.
    """
    spec = bot_spec(a.bot)
    params = _check_strategy(a, spec)
    _check_symbols(a, spec)
    if a.interval not in INTERVAL_MS:
        raise UserInputError(f"{a.bot}: unknown bar interval {a.interval!r}")
    f = a.capital_fraction
    if not isinstance(f, int | float) or not math.isfinite(f) or not 0.0 <= f <= 1.0:
        raise UserInputError(f"{a.bot}: capital fraction {f!r} must be in [0, 1]")
    problems = a.risk.problems()
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
    return replace(a, params=params, capital_fraction=float(f))
