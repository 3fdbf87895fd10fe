"""The fleet as a TOML file: its in-memory form (:class:`BotSpec`, :class:`Fleet`) and the loader.

The default fleet ships in the package (``trading_pipeline/bots/fleet.toml``, read through
importlib.resources); ``TP_FLEET_FILE`` names another one. :func:`load_fleet` refuses a file it
cannot trust with one :class:`FleetFileError` line naming the file and the problem: unknown keys,
families, venues or intervals, duplicate bot names, capital fractions that are negative,
not finite or over 100% together, risk limits outside (0, 1], default parameters outside the
family's search space. Nothing here talks to an exchange or writes a file.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from trading_pipeline.bots.limits import RISK_LIMIT_NAMES, RiskLimits
from trading_pipeline.errors import UserInputError
from trading_pipeline.market.schema import INTERVAL_MS
from trading_pipeline.strategies.registry import FAMILIES, MULTI_FAMILIES
from trading_pipeline.venues.names import VENUES

CASH = "cash"  # the choice "hold no position": every bot may always be given it
DEFAULT_FLEET_RESOURCE = "fleet.toml"
DEFAULT_SOURCE = f"trading_pipeline/bots/{DEFAULT_FLEET_RESOURCE} (package default)"
FRACTION_TOLERANCE = 1e-9  # fractions are floats: 0.3 + 0.25 + 0.25 + 0.15 + 0.05 may exceed 1
DEFAULT_FLEET_DAILY_LOSS = 0.10
DEFAULT_MOMENTUM_LOOKBACK = 168  # bars of trailing return behind a momentum pick (7 days of 1h)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # becomes a folder name under the bots dir
_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
_BOT_KEYS = frozenset(
    {
        "name",
        "role",
        "symbols",
        "universe",
        "interval",
        "families",
        "capital_fraction",
        "venues",
        "default_family",
        "default_params",
        "risk",
        "description",
        "momentum_top",
        "momentum_lookback",
    }
)
_TOP_KEYS = frozenset({"fleet", "universes", "bots"})
_KNOWN_FAMILIES = {**FAMILIES, **MULTI_FAMILIES}


class FleetFileError(UserInputError):
    """A fleet file that cannot be used: one line naming the file and the problem."""


@dataclass(frozen=True)
class BotSpec:
    """One bot: its symbols and bar interval, the strategy families it may run, its default
    share of the fleet's capital, the families it runs before any selector decision and its
    risk limits."""

    name: str
    role: str
    symbols: tuple[str, ...]
    interval: str
    families: tuple[str, ...]
    capital_fraction: float
    venues: tuple[str, ...] = ("binance",)
    default_family: str = CASH
    default_params: Mapping[str, object] = field(default_factory=dict)
    description: str = ""
    risk: RiskLimits = field(default_factory=RiskLimits)
    # > 0: at each decision the bot trades only the ``momentum_top`` symbols with the highest
    # trailing return over ``momentum_lookback`` closed bars (market/momentum_pick.py)
    momentum_top: int = 0
    momentum_lookback: int = DEFAULT_MOMENTUM_LOOKBACK

    def allows(self, family: str) -> bool:
        return family == CASH or family in self.families


@dataclass(frozen=True)
class Fleet:
    """The bots in file order, where they came from, and the fleet-wide daily loss limit."""

    bots: tuple[BotSpec, ...]
    source: str = DEFAULT_SOURCE
    daily_loss: float = DEFAULT_FLEET_DAILY_LOSS
    universes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def by_name(self) -> dict[str, BotSpec]:
        return {b.name: b for b in self.bots}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bots)

    def bot(self, name: str) -> BotSpec:
        """The bot called ``name``; an unknown name is a one-line :class:`UserInputError`."""
        for b in self.bots:
            if b.name == name:
                return b
        raise UserInputError(f"unknown bot {name!r}; known: {', '.join(self.names)}")

    def split(self) -> dict[str, float]:
        """Each bot's share of the fleet's capital (the plan's 30/25/25/15/5 by default)."""
        return {b.name: b.capital_fraction for b in self.bots}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (``fleet show --json``)."""
        return {
            "source": self.source,
            "daily_loss": self.daily_loss,
            "capital_total": sum(b.capital_fraction for b in self.bots),
            "bots": [
                {
                    "name": b.name,
                    "role": b.role,
                    "symbols": list(b.symbols),
                    "interval": b.interval,
                    "families": list(b.families),
                    "capital_fraction": b.capital_fraction,
                    "venues": list(b.venues),
                    "default_family": b.default_family,
                    "default_params": dict(b.default_params),
                    "risk": {n: getattr(b.risk, n) for n in RISK_LIMIT_NAMES},
                    "description": b.description,
                    **(
                        {
                            "momentum_top": b.momentum_top,
                            "momentum_lookback": b.momentum_lookback,
                        }
                        if b.momentum_top
                        else {}
                    ),
                }
                for b in self.bots
            ],
        }


# ---- parsing ---------------------------------------------------------------------------------
def _fraction(value: Any, what: str, *, low_open: bool) -> float:
    """A finite number in [0, 1] (or (0, 1] when ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserInputError(f"{what} must be a finite number, got {value!r}")
    v = float(value)
    if not (0.0 < v <= 1.0 if low_open else 0.0 <= v <= 1.0):
        raise UserInputError(f"{what} must be in {'(0, 1]' if low_open else '[0, 1]'}, got {v}")
    return v


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UserInputError(f"{what} must be a list of names, got {value!r}")
    if len(set(value)) != len(value):
        dup = next(v for v in value if value.count(v) > 1)
        raise UserInputError(f"{what} lists {dup!r} twice")
    return tuple(value)


def _symbols(
    raw: Mapping[str, Any], name: str, universes: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    if ("symbols" in raw) == ("universe" in raw):
        raise UserInputError(f"bot {name}: give either symbols or universe")
    if "universe" in raw:
        u = raw["universe"]
        if not isinstance(u, str) or u not in universes:
            known = ", ".join(universes) or "none defined"
            raise UserInputError(f"bot {name}: unknown universe {u!r} (known: {known})")
        return universes[u]
    symbols = _strings(raw["symbols"], f"bot {name}: symbols")
    if not symbols:
        raise UserInputError(f"bot {name}: symbols must not be empty")
    return symbols


def _check_symbols(spec: BotSpec) -> None:
    for s in spec.symbols:
        venue, _, symbol = s.rpartition(":")
        if not _SYMBOL.match(symbol):
            raise UserInputError(f"bot {spec.name}: {s!r} is not a symbol like BTCUSDT")
        if venue and venue not in spec.venues:
            raise UserInputError(
                f"bot {spec.name}: symbol {s} names venue {venue!r}, not one of its venues "
                f"({', '.join(spec.venues)})"
            )


def _risk(value: Any, name: str) -> RiskLimits:
    if not isinstance(value, dict):
        raise UserInputError(f"bot {name}: risk must be a table, got {value!r}")
    unknown = sorted(set(value) - set(RISK_LIMIT_NAMES))
    if unknown:
        raise UserInputError(
            f"bot {name}: unknown risk limit {unknown[0]!r} (known: {', '.join(RISK_LIMIT_NAMES)})"
        )
    for k, v in value.items():
        _fraction(v, f"bot {name}: risk limit {k}", low_open=True)
    return RiskLimits(**{k: float(v) for k, v in value.items()})


def _name(raw: Any, index: int) -> str:
    if not isinstance(raw, dict):
        raise UserInputError(f"bots[{index}] must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserInputError(
            f"bots[{index}]: name {name!r} must be lower-case letters, digits, - or _ "
            "(it becomes a folder name)"
        )
    unknown = sorted(set(raw) - _BOT_KEYS)
    if unknown:
        raise UserInputError(f"bot {name}: unknown key {unknown[0]!r}")
    for key in ("interval", "families", "capital_fraction"):
        if key not in raw:
            raise UserInputError(f"bot {name}: {key} is missing")
    for key in ("role", "description"):
        if not isinstance(raw.get(key, ""), str):
            raise UserInputError(f"bot {name}: {key} must be text")
    return name


def _families(raw: Mapping[str, Any], name: str) -> tuple[str, ...]:
    families = _strings(raw["families"], f"bot {name}: families")
    for f in families:
        if f not in _KNOWN_FAMILIES:
            raise UserInputError(
                f"bot {name}: unknown strategy family {f!r} (known: {', '.join(_KNOWN_FAMILIES)})"
            )
    return families


def _venues(raw: Mapping[str, Any], name: str) -> tuple[str, ...]:
    venues = _strings(raw.get("venues", ["binance"]), f"bot {name}: venues")
    if not venues:
        raise UserInputError(f"bot {name}: venues must not be empty")
    for v in venues:
        if v not in VENUES:
            raise UserInputError(f"bot {name}: unknown venue {v!r} (known: {', '.join(VENUES)})")
    return venues


def _default(
    raw: Mapping[str, Any], name: str, families: tuple[str, ...]
) -> tuple[str, dict[str, Any]]:
    family = raw.get("default_family", CASH)
    if family != CASH and family not in families:
        raise UserInputError(f"bot {name}: default_family {family!r} is not one of its families")
    params = raw.get("default_params", {})
    if not isinstance(params, dict):
        raise UserInputError(f"bot {name}: default_params must be a table")
    if params and family == CASH:
        raise UserInputError(f"bot {name}: cash takes no default_params")
    if family != CASH:
        try:
            _KNOWN_FAMILIES[family].validate(params)
        except UserInputError as exc:
            raise UserInputError(f"bot {name}: default_params: {exc}") from None
    return family, dict(params)


def _count(raw: Mapping[str, Any], key: str, name: str, default: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise UserInputError(f"bot {name}: {key} must be a whole number in [0, {high}]")
    return int(value)


def _bot(raw: Any, index: int, universes: Mapping[str, tuple[str, ...]]) -> BotSpec:
    name = _name(raw, index)
    interval = raw["interval"]
    if interval not in INTERVAL_MS:
        raise UserInputError(
            f"bot {name}: unknown interval {interval!r} (known: {', '.join(INTERVAL_MS)})"
        )
    families = _families(raw, name)
    default_family, default_params = _default(raw, name, families)
    spec = BotSpec(
        name=name,
        role=raw.get("role", ""),
        symbols=_symbols(raw, name, universes),
        interval=interval,
        families=families,
        capital_fraction=_fraction(
            raw["capital_fraction"], f"bot {name}: capital_fraction", low_open=False
        ),
        venues=_venues(raw, name),
        default_family=default_family,
        default_params=default_params,
        description=raw.get("description", ""),
        risk=_risk(raw.get("risk", {}), name),
    )
    spec = replace(
        spec,
        momentum_top=_count(raw, "momentum_top", name, 0, len(spec.symbols)),
        momentum_lookback=_count(
            raw, "momentum_lookback", name, DEFAULT_MOMENTUM_LOOKBACK, 100_000
        ),
    )
    if spec.momentum_top and spec.momentum_lookback < 1:
        raise UserInputError(f"bot {name}: momentum_lookback must be at least 1 bar")
    _check_symbols(spec)
    return spec


def _universes(raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise UserInputError("[universes] must be a table of symbol lists")
    return {str(k): _strings(v, f"universe {k}") for k, v in raw.items()}


def parse_fleet(data: Mapping[str, Any], source: str) -> Fleet:
    """The fleet described by ``data`` (a parsed TOML document); ``source`` names it in errors."""
    try:
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise UserInputError(f"unknown top-level key {unknown[0]!r}")
        head = data.get("fleet", {})
        if not isinstance(head, dict) or set(head) - {"daily_loss"}:
            raise UserInputError("[fleet] takes only daily_loss")
        daily = _fraction(
            head.get("daily_loss", DEFAULT_FLEET_DAILY_LOSS), "fleet daily_loss", low_open=True
        )
        universes = _universes(data.get("universes", {}))
        raw_bots = data.get("bots")
        if not isinstance(raw_bots, list) or not raw_bots:
            raise UserInputError("no [[bots]] table: a fleet needs at least one bot")
        bots = [_bot(raw, i, universes) for i, raw in enumerate(raw_bots)]
        names = [b.name for b in bots]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise UserInputError(f"bot name {dup!r} is used twice")
        total = sum(b.capital_fraction for b in bots)
        if total > 1.0 + FRACTION_TOLERANCE:
            raise UserInputError(
                f"capital fractions total {total:.1%} (over 100%): "
                + ", ".join(f"{b.name} {b.capital_fraction:.1%}" for b in bots)
            )
    except FleetFileError:
        raise
    except UserInputError as exc:
        raise FleetFileError(f"fleet file {source}: {exc}") from None
    return Fleet(tuple(bots), source=source, daily_loss=daily, universes=universes)


def default_fleet_text() -> str:
    """The TOML text of the fleet shipped in the package."""
    return (
        resources.files("trading_pipeline.bots")
        .joinpath(DEFAULT_FLEET_RESOURCE)
        .read_text(encoding="utf-8")
    )


def parse_fleet_text(text: str, source: str) -> Fleet:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FleetFileError(f"fleet file {source}: not valid TOML: {exc}") from None
    return parse_fleet(data, source)


_CACHE: dict[tuple[str, int, int], Fleet] = {}


def load_fleet(path: str | Path | None = None) -> Fleet:
    """The fleet in ``path`` (None: the package default), validated; cached per file version."""
    if path is None:
        key = ("", 0, 0)
        if key not in _CACHE:
            _CACHE[key] = parse_fleet_text(default_fleet_text(), DEFAULT_SOURCE)
        return _CACHE[key]
    p = Path(path)
    try:
        st = p.stat()
        key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
        if key in _CACHE:
            return _CACHE[key]
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise FleetFileError(f"fleet file {p}: cannot read it ({reason})") from None
    fleet = parse_fleet_text(text, str(p))
    _CACHE[key] = fleet
    return fleet
