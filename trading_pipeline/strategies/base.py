"""The strategy contract: a family with a name, a version, a typed search space and signals.

A family turns bars (a polars frame in the canonical kline schema) and parameters into
:class:`Signals`: entry/exit events per bar, optionally short events and a per-bar stop distance.
The same ``signals`` function feeds the backtester, the tuner and the bots, so there is one
implementation of every strategy. Families that need several input series (arbitrage, hedging)
set ``inputs > 1`` and implement :meth:`StrategyFamily.signals_multi`.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import polars as pl

from trading_pipeline.errors import UserInputError

if TYPE_CHECKING:  # optuna is imported only by the tuner
    import optuna

    from trading_pipeline.strategies.compiled import Compiled

ParamValue = int | float | str | bool
Params = Mapping[str, ParamValue]

# Bit flags of Signals.flags, read by the backtest kernels.
LONG_ENTRY = 1
LONG_EXIT = 2
SHORT_ENTRY = 4
SHORT_EXIT = 8


@dataclass(frozen=True)
class Param:
    """One parameter: an int/float range with a step, or a list of choices.

    ``off`` is an extra allowed value outside the range that disables a feature (for example a
    trend filter window of 0). ``tune`` says whether Optuna samples it; otherwise it keeps
    ``default``.
    """

    name: str
    kind: Literal["int", "float", "choice"]
    default: ParamValue
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[ParamValue, ...] = ()
    off: ParamValue | None = None
    tune: bool = True
    help: str = ""

    def coerce(self, value: Any) -> ParamValue:
        """Convert ``value`` (possibly a command-line string) to this parameter's type."""
        try:
            if self.kind == "int":
                f = float(value)
                if not f.is_integer():
                    raise ValueError
                return int(f)
            if self.kind == "float":
                f = float(value)
                if not math.isfinite(f):
                    raise ValueError
                return f
        except (TypeError, ValueError):
            raise UserInputError(
                f"parameter {self.name} must be {'an integer' if self.kind == 'int' else 'a number'}"
                f", got {value!r}"
            ) from None
        for c in self.choices:
            if str(c) == str(value):
                return c
        raise UserInputError(
            f"parameter {self.name} must be one of {list(self.choices)}, got {value!r}"
        )

    def check(self, value: ParamValue) -> None:
        """Raise :class:`UserInputError` when ``value`` is outside this parameter's space."""
        if self.off is not None and value == self.off:
            return
        if self.kind == "choice":
            if value not in self.choices:
                raise UserInputError(f"parameter {self.name} must be one of {list(self.choices)}")
            return
        assert self.low is not None and self.high is not None
        v = float(value)  # type: ignore[arg-type]
        if not (self.low <= v <= self.high):
            extra = f" (or {self.off} to turn it off)" if self.off is not None else ""
            raise UserInputError(
                f"parameter {self.name}={value} is outside its range "
                f"[{_fmt(self.low)}, {_fmt(self.high)}]{extra}"
            )

    def values(self) -> list[ParamValue]:
        """Every value of the grid over this parameter's whole range (choices or stepped range)."""
        if self.kind == "choice":
            return list(self.choices)
        assert self.low is not None and self.high is not None
        step = self.step or (1 if self.kind == "int" else (self.high - self.low) / 10)
        return stepped(self.low, self.high, step, integer=self.kind == "int")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# The most combinations a grid may expand to (checked before anything is expanded).
MAX_GRID_COMBOS = 1_000_000


def stepped(start: float, stop: float, step: float, *, integer: bool) -> list[ParamValue]:
    """``start, start+step, ... <= stop`` (inclusive, tolerant to float error)."""
    if not all(math.isfinite(x) for x in (start, stop, step)):
        raise UserInputError(f"range {start}:{stop}:{step} must be finite numbers")
    if step <= 0:
        raise UserInputError(f"step must be positive, got {step}")
    if integer and not all(float(x).is_integer() for x in (start, stop, step)):
        raise UserInputError(
            f"an integer parameter needs whole numbers for start:stop:step, got {start}:{stop}:{step}"
        )
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count <= 0:
        raise UserInputError(f"empty range {start}:{stop}:{step}")
    if count > MAX_GRID_COMBOS:
        raise UserInputError(
            f"range {start}:{stop}:{step} has {count:,} values; the limit is {MAX_GRID_COMBOS:,}"
        )
    out = [start + i * step for i in range(count)]
    return [round(v) for v in out] if integer else [round(v, 12) for v in out]


@dataclass(frozen=True)
class LessThan:
    """Constraint ``params[a] < params[b]``."""

    a: str
    b: str

    def holds(self, params: Params) -> bool:
        return float(params[self.a]) < float(params[self.b])  # type: ignore[arg-type]

    def describe(self) -> str:
        return f"{self.a} < {self.b}"


@dataclass(frozen=True)
class SearchSpace:
    """The typed parameters of a family and the constraints between them."""

    params: tuple[Param, ...]
    constraints: tuple[LessThan, ...] = ()

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise UserInputError(f"unknown parameter {name!r}; known: {', '.join(self.names)}")

    def defaults(self) -> dict[str, ParamValue]:
        return {p.name: p.default for p in self.params}

    def validate(self, params: Mapping[str, Any]) -> dict[str, ParamValue]:
        """Fill defaults, coerce types, and refuse unknown names, out-of-space values, broken
        constraints, all with :class:`UserInputError`."""
        unknown = [k for k in params if k not in self.names]
        if unknown:
            raise UserInputError(
                f"unknown parameter {unknown[0]!r}; known: {', '.join(self.names)}"
            )
        out = self.defaults()
        for k, v in params.items():
            p = self.param(k)
            out[k] = p.coerce(v)
            p.check(out[k])
        for c in self.constraints:
            if not c.holds(out):
                raise UserInputError(
                    f"constraint {c.describe()} broken: {c.a}={out[c.a]}, {c.b}={out[c.b]}"
                )
        return out

    def suggest(self, trial: optuna.Trial) -> dict[str, ParamValue]:
        """Sample a valid parameter set with Optuna; ``b`` of ``a < b`` is sampled above ``a``."""
        out = self.defaults()
        for p in self.params:
            if not p.tune:
                continue
            low = p.low
            for c in self.constraints:
                if c.b == p.name and c.a in out and low is not None:
                    floor = float(out[c.a]) + (p.step or (1 if p.kind == "int" else 1e-9))  # type: ignore[arg-type]
                    if floor > low:
                        assert p.step is not None or p.kind != "float"
                        steps = math.ceil((floor - low) / (p.step or 1) - 1e-9)
                        low = low + steps * (p.step or 1)
            if p.kind == "int":
                assert low is not None and p.high is not None
                out[p.name] = trial.suggest_int(
                    p.name, int(low), int(p.high), step=int(p.step or 1)
                )
            elif p.kind == "float":
                assert low is not None and p.high is not None
                out[p.name] = trial.suggest_float(p.name, low, p.high, step=p.step)
            else:
                out[p.name] = trial.suggest_categorical(p.name, list(p.choices))  # type: ignore[arg-type,assignment]
        return self.validate(out)

    def grid(self, **ranges: Sequence[ParamValue] | ParamValue) -> list[dict[str, ParamValue]]:
        """Every valid combination: ``ranges`` gives the values per parameter (a scalar pins it,
        unnamed parameters keep their defaults); combinations breaking a constraint are dropped,
        values outside the space raise :class:`UserInputError`."""
        names = list(ranges)
        raws = {
            name: list(raw) if isinstance(raw, list | tuple | range | np.ndarray) else [raw]
            for name, raw in ranges.items()
        }
        size = math.prod(len(vals) for vals in raws.values())
        if size > MAX_GRID_COMBOS:
            raise UserInputError(
                f"the grid has {size:,} combinations; the limit is {MAX_GRID_COMBOS:,} "
                "(use fewer values or a larger step)"
            )
        axes: list[list[ParamValue]] = []
        for name in names:
            p = self.param(name)
            vals = raws[name]
            if not vals:
                raise UserInputError(f"no values for parameter {name}")
            coerced = [p.coerce(v) for v in vals]
            for v in coerced:
                p.check(v)
            axes.append(coerced)
        base = self.defaults()
        out: list[dict[str, ParamValue]] = []
        for combo in itertools.product(*axes):
            params = {**base, **dict(zip(names, combo, strict=True))}
            if all(c.holds(params) for c in self.constraints):
                out.append(params)
        return out


@dataclass
class Signals:
    """Per-bar signal events for one series, aligned with the bars.

    ``flags`` holds bit flags (LONG_ENTRY, LONG_EXIT, SHORT_ENTRY, SHORT_EXIT) evaluated at each
    bar's close. ``stop_distance`` (optional, price units, NaN = none) is a stop placed at entry
    (entry price minus the distance for a long, plus for a short), e.g. an ATR stop.
    """

    flags: np.ndarray
    stop_distance: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_arrays(
        cls,
        entries: np.ndarray,
        exits: np.ndarray,
        short_entries: np.ndarray | None = None,
        short_exits: np.ndarray | None = None,
        stop_distance: np.ndarray | None = None,
    ) -> Signals:
        """Build from boolean arrays (NaN-derived False is fine)."""
        flags = np.where(np.asarray(entries, dtype=bool), LONG_ENTRY, 0).astype(np.int8)
        flags |= np.where(np.asarray(exits, dtype=bool), LONG_EXIT, 0).astype(np.int8)
        if short_entries is not None:
            flags |= np.where(np.asarray(short_entries, dtype=bool), SHORT_ENTRY, 0).astype(np.int8)
        if short_exits is not None:
            flags |= np.where(np.asarray(short_exits, dtype=bool), SHORT_EXIT, 0).astype(np.int8)
        return cls(flags=flags, stop_distance=stop_distance)

    @classmethod
    def from_positions(cls, target: np.ndarray) -> Signals:
        """Build from a target position per bar (+1 long, 0 flat, -1 short)."""
        t = np.nan_to_num(np.asarray(target, dtype=np.float64)).astype(np.int8)
        prev = np.concatenate([[np.int8(0)], t[:-1]])
        entries = (t == 1) & (prev != 1)
        exits = (prev == 1) & (t != 1)
        short_entries = (t == -1) & (prev != -1)
        short_exits = (prev == -1) & (t != -1)
        return cls.from_arrays(entries, exits, short_entries, short_exits)

    @property
    def entries(self) -> np.ndarray:
        return (self.flags & LONG_ENTRY) != 0

    @property
    def exits(self) -> np.ndarray:
        return (self.flags & LONG_EXIT) != 0

    def __len__(self) -> int:
        return int(self.flags.shape[0])


class StrategyError(UserInputError):
    """A strategy's ``signals()`` raised or returned something other than :class:`Signals`."""


def _guarded_signals(fn: Callable[..., Any]) -> Callable[..., Signals]:
    """``fn`` (a family's ``signals``) turning its failures into one line naming the family."""

    @functools.wraps(fn)
    def signals(self: StrategyFamily, bars: pl.DataFrame, params: Params) -> Signals:
        try:
            out = fn(self, bars, params)
        except (UserInputError, PermissionError):  # PermissionError: the sandbox's OutsideInput
            raise
        except Exception as exc:
            why = (str(exc).strip().splitlines() or [""])[0]
            raise StrategyError(
                f"strategy {self.name}: signals() raised {type(exc).__name__}"
                + (f": {why}" if why else "")
            ) from exc
        if not isinstance(out, Signals):
            raise StrategyError(
                f"strategy {self.name}: signals() returned {type(out).__name__}, not Signals"
            )
        return out

    signals._guarded = True  # type: ignore[attr-defined]
    return signals


class StrategyFamily:
    """Base class of every strategy family (subclass it; see the modules of this package).

    Subclasses set ``name``, ``version``, ``space`` and implement :meth:`signals`. Signals at bar
    ``t`` may use only bars ``<= t`` (the lookahead check verifies it). ``warmup(params)`` tells
    walk-forward folds how many bars before a fold the indicators need.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    space: ClassVar[SearchSpace]
    inputs: ClassVar[int] = 1
    description: ClassVar[str] = ""
    # Risk defaults the family suggests (e.g. tight TP/SL for scalping); callers may override.
    risk_defaults: ClassVar[Mapping[str, float]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("signals")
        if own is not None and not getattr(own, "_guarded", False):
            cls.signals = _guarded_signals(own)  # type: ignore[method-assign]

    def validate(self, params: Mapping[str, Any]) -> dict[str, ParamValue]:
        return self.space.validate(params)

    def suggest(self, trial: optuna.Trial) -> dict[str, ParamValue]:
        return self.space.suggest(trial)

    def grid(self, **ranges: Sequence[ParamValue] | ParamValue) -> list[dict[str, ParamValue]]:
        return self.space.grid(**ranges)

    def default_params(self) -> dict[str, ParamValue]:
        return self.space.defaults()

    def warmup(self, params: Params) -> int:
        """Bars needed before the first valid signal (defaults to the largest int parameter)."""
        ints = [int(v) for v in params.values() if isinstance(v, int) and not isinstance(v, bool)]
        return max(ints, default=0)

    def signals(self, bars: pl.DataFrame, params: Params) -> Signals:
        raise NotImplementedError

    def compiled(self, params: Params) -> Compiled | None:
        """The compiled form of ``params`` (lines + rule, see :mod:`.compiled`) that grids,
        long backtests and batched tuning run in one compiled call; ``None`` (the default, e.g.
        for user families) means only :meth:`signals` exists and callers loop over it."""
        return None

    def signals_multi(self, series: Mapping[str, pl.DataFrame], params: Params) -> Signals:
        """Signals from several aligned series; single-input families use the only one."""
        if self.inputs == 1 and len(series) == 1:
            return self.signals(next(iter(series.values())), params)
        raise NotImplementedError(f"{self.name} does not take {len(series)} input series")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} v{self.version}>"
