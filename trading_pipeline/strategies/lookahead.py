"""The lookahead audit of a strategy family: do its signals at bar ``t`` use bars after ``t``?

For several parameter sets (the defaults, each parameter at its bounds and ``off`` value, every
choice, the all-low and all-high corners, seeded samples), the family's ``signals`` on the full
bars is compared with ``signals`` on the bars truncated at ``t``: on entries/exits (the flags), the
stop distance and every per-bar ``Signals.meta`` series. Truncation points are chosen where a
leak shows — every bar where the full run's signals or meta change (up to a cap, spread evenly),
the bars just before them, seeded random bars, and bars inside the warm-up down to bar 1 — so a
rare one-bar leak is not missed between fixed points. Every call runs under
:func:`~trading_pipeline.strategies.sandbox.no_outside_input`, so data read from a file or the
network is refused instead of silently escaping truncation.

The companion *recursive* check (freqtrade's recursive analysis) runs the family on the bars
starting later and compares the signals after the declared warm-up: a family whose signals at a
bar depend on how much history came before it beyond its warm-up is reported as unstable.

A run on which no parameter set produced a single entry proves nothing: it is ``inconclusive``,
never ``clean``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from trading_pipeline.errors import UserInputError
from trading_pipeline.market.candles import CandleError, load_store
from trading_pipeline.regimes.synthetic import synthetic_bars
from trading_pipeline.strategies.base import Params, ParamValue, Signals, StrategyFamily
from trading_pipeline.strategies.sandbox import OutsideInput, no_outside_input
from trading_pipeline.strategies.universe import require_fitting_frame

Verdict = Literal["clean", "leaky", "inconclusive"]
MAX_CHANGE_POINTS = 120
RANDOM_POINTS = 24
WARMUP_POINTS = 8
SHOCK = 1.2  # the shock scan's price factor (and its inverse)
MAX_SHOCK_PERIOD = 1024  # longest warm-up (+3) the shock scan covers at every offset
MAX_SHOCK_CONFIRMATIONS = 24  # truncations spent confirming moved bars, per parameter set


@dataclass(frozen=True)
class Finding:
    """One problem: where it shows, with which parameters, in which field."""

    kind: Literal["lookahead", "outside-input", "error", "recursive"]
    params: dict[str, ParamValue]
    field: str
    bar: int | None = None
    time: str | None = None
    truncated_at: int | None = None
    detail: str = ""

    def describe(self) -> str:
        where = f" at bar {self.bar}" if self.bar is not None else ""
        when = f" ({self.time})" if self.time else ""
        cut = f" when the bars end at {self.truncated_at}" if self.truncated_at is not None else ""
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.kind} in {self.field}{where}{when}{cut}, params {self.params}{extra}"


@dataclass
class AuditReport:
    """What :func:`audit_family` found; ``verdict`` is ``clean`` only when it proved something."""

    family: str
    version: int
    data: str
    bars: int
    param_sets: int
    points: int
    exercised: int  # parameter sets whose full run had at least one entry
    findings: list[Finding] = field(default_factory=list)
    recursive: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    shock_runs: int = 0  # runs of the shock scan, over all parameter sets
    shock_partial: int = 0  # parameter sets whose shock scan could not cover every bar

    @property
    def verdict(self) -> Verdict:
        if self.findings:
            return "leaky"
        if self.exercised == 0:
            return "inconclusive"
        return "clean"

    @property
    def clean(self) -> bool:
        return self.verdict == "clean"

    @property
    def stable(self) -> bool:
        return not self.recursive

    def describe(self) -> str:
        head = (
            f"{self.family} v{self.version}: {self.verdict.upper()} — {self.param_sets} parameter "
            f"sets ({self.exercised} with signals) × {self.points} truncation points "
            f"(+ {self.shock_runs} shock-scan runs) on {self.bars:,} bars of {self.data} in "
            f"{self.seconds:.1f} s"
        )
        lines = [head]
        if self.verdict == "inconclusive":
            lines.append("  no parameter set produced an entry on this data: nothing was proven")
        if self.shock_partial and not self.findings:
            lines.append(
                f"  the shock scan covered every bar for {self.param_sets - self.shock_partial} "
                f"of {self.param_sets} parameter sets (memory longer than declared or than the "
                "data allows): rare one-bar leaks rest on the truncation points there"
            )
        lines += [f"  {f.describe()}" for f in self.findings[:5]]
        if self.recursive:
            lines.append(
                "  unstable: signals change with the length of history before them "
                f"(beyond the declared warm-up): {self.recursive[0].describe()}"
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(verdict=self.verdict, stable=self.stable)
        return out


# ---- parameter sets ------------------------------------------------------------------------
def param_sets(
    fam: StrategyFamily, *, samples: int = 6, seed: int = 0
) -> list[dict[str, ParamValue]]:
    """Defaults, each parameter at each bound/``off``/choice, the corners, and seeded samples;
    each validated against the space (sets breaking a constraint are dropped)."""
    space = fam.space
    base = space.defaults()
    fixed: list[dict[str, Any]] = [dict(base)]
    for p in space.params:
        values: list[Any] = list(p.choices) if p.kind == "choice" else [p.low, p.high]
        if p.off is not None:
            values.append(p.off)
        fixed += [{**base, p.name: v} for v in values if v is not None]
    ranged = [p for p in space.params if p.kind != "choice"]
    fixed.append({**base, **{p.name: p.low for p in ranged}})
    fixed.append({**base, **{p.name: p.high for p in ranged}})
    out: list[dict[str, ParamValue]] = []
    seen: set[tuple[tuple[str, Any], ...]] = set()

    def add(candidate: Mapping[str, Any]) -> bool:
        try:
            valid = fam.validate(candidate)
        except UserInputError:
            return False
        key = tuple(sorted(valid.items()))
        if key in seen:
            return False
        seen.add(key)
        out.append(valid)
        return True

    for c in fixed:
        add(c)
    rng = np.random.default_rng(seed)
    tunable = [p for p in space.params if p.tune]
    added = 0
    for _ in range(samples * 50):
        if added >= samples or not tunable:
            break
        added += add({**base, **{p.name: _pick(p.values(), rng) for p in tunable}})
    return out


def _pick(values: Sequence[ParamValue], rng: np.random.Generator) -> ParamValue:
    return values[int(rng.integers(0, len(values)))]


# ---- comparing signals -----------------------------------------------------------------------
def _fields(sig: Signals, n: int) -> dict[str, np.ndarray]:
    """Every series of a run: flags, stop distance, each per-bar ``meta`` series of length n
    (nested dicts and plain lists included) and each scalar ``meta`` value (as a 0-d array: a
    take-profit computed from the whole sample changes when the bars are truncated)."""
    out = {"flags": np.asarray(sig.flags)}
    if sig.stop_distance is not None:
        out["stop_distance"] = np.asarray(sig.stop_distance, dtype=np.float64)
    _meta_fields(sig.meta or {}, "meta", n, out)
    return out


def _meta_fields(meta: Mapping[str, Any], prefix: str, n: int, out: dict[str, np.ndarray]) -> None:
    for name, value in meta.items():
        key = f"{prefix}.{name}"
        if isinstance(value, Mapping):
            _meta_fields(value, key, n, out)
            continue
        arr = _as_array(value)
        if arr is not None and (arr.ndim == 0 or (arr.ndim == 1 and arr.shape[0] == n)):
            out[key] = arr


def _as_array(value: Any) -> np.ndarray | None:
    if value is None:
        return np.asarray(np.nan)
    if isinstance(value, str | bool | int | float | np.generic):
        return np.asarray(value)
    if isinstance(value, pl.Series):
        value = value.to_numpy()
    elif isinstance(value, list | tuple):
        try:
            value = np.asarray([np.nan if v is None else v for v in value])
        except (TypeError, ValueError):
            return None
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufcmMU":
        return value
    return None


def _differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape != b.shape:
        return np.ones(max(a.size, b.size, 1), dtype=bool)
    if a.dtype.kind in "biufc" and b.dtype.kind in "biufc" and "f" in a.dtype.kind + b.dtype.kind:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        both_nan = np.isnan(a64) & np.isnan(b64)
        close = np.isclose(a64, b64, rtol=1e-9, atol=1e-12)
        return ~(both_nan | close)
    return np.asarray(a != b)


def _run(fam: StrategyFamily, bars: pl.DataFrame, params: Params) -> Signals:
    with no_outside_input() as refused:
        sig = fam.signals(bars, params)
    if refused:  # refused even if the strategy caught the error and carried on
        raise OutsideInput(refused[0])
    if not isinstance(sig, Signals):
        raise TypeError(f"signals() returned {type(sig).__name__}, not Signals")
    flags = np.asarray(sig.flags)
    if flags.ndim != 1 or len(flags) != bars.height:
        raise ValueError(f"signals() returned {flags.shape} flags for {bars.height} bars")
    if sig.stop_distance is not None and np.shape(sig.stop_distance) != (bars.height,):
        raise ValueError(
            f"signals() returned a stop distance of shape {np.shape(sig.stop_distance)} "
            f"for {bars.height} bars"
        )
    return sig


def _change_points(fields: Mapping[str, np.ndarray]) -> np.ndarray:
    n = len(fields["flags"])
    changed = np.zeros(n, dtype=bool)
    for arr in fields.values():
        if arr.ndim == 0:
            continue
        if arr.dtype.kind in "fc":
            a = np.nan_to_num(arr.astype(np.float64), nan=np.inf)
            changed[1:] |= a[1:] != a[:-1]
        else:
            changed[1:] |= arr[1:] != arr[:-1]
    changed |= fields["flags"] != 0
    return np.flatnonzero(changed)


def truncation_points(
    fields: Mapping[str, np.ndarray], *, warmup: int, seed: int, cap: int = MAX_CHANGE_POINTS
) -> list[int]:
    """Where to cut: change points (and the bar before each), random bars, warm-up bars."""
    n = len(fields["flags"])
    changes = _change_points(fields)
    if len(changes) > cap:
        changes = changes[np.linspace(0, len(changes) - 1, cap).round().astype(int)]
    rng = np.random.default_rng(seed)
    random = rng.integers(1, n, size=min(RANDOM_POINTS, n - 1)) if n > 1 else np.array([], int)
    inside = np.unique(np.geomspace(1, max(2, min(warmup + 2, n - 1)), WARMUP_POINTS).astype(int))
    points = np.concatenate([changes, changes - 1, random, inside])
    points = points[(points >= 1) & (points < n - 1)]
    return sorted({int(t) for t in points})


def _time(bars: pl.DataFrame, bar: int) -> str | None:
    if "open_time" in bars.columns and 0 <= bar < bars.height:
        return str(bars["open_time"][bar])
    return None


def _plain(value: Any) -> str:
    """A numpy scalar as a person reads it (``2``, ``0.5``), not ``np.int8(2)``."""
    item = value.item() if hasattr(value, "item") else value
    return repr(item)


def _compare(
    fields: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray], t: int
) -> tuple[str, int | None, str] | None:
    """(field, first differing bar, detail) between a run and a run on the bars cut at ``t``."""
    for name, arr in fields.items():
        if name not in got:
            return name, None, "missing on truncated bars"
        if arr.ndim == 0:
            if _differs(got[name], arr).any():
                return name, None, f"full run {_plain(arr)}, truncated {_plain(got[name])}"
            continue
        diff = _differs(got[name], arr[: t + 1])
        if diff.any():
            bar = int(np.argmax(diff))
            return name, bar, f"full run {_plain(arr[bar])}, truncated {_plain(got[name][bar])}"
    return None


def _truncated(
    fam: StrategyFamily,
    bars: pl.DataFrame,
    params: dict[str, ParamValue],
    fields: Mapping[str, np.ndarray],
    t: int,
    *,
    note: str = "",
) -> Finding | None:
    """The finding (if any) of cutting ``bars`` after bar ``t``; OutsideInput propagates."""
    try:
        part = _run(fam, bars.head(t + 1), params)
    except OutsideInput:
        raise
    except Exception as exc:
        if t <= fam.warmup(params):
            return None  # too few bars for this family: not a leak
        detail = f"signals() failed on bars ending at {t}: {type(exc).__name__}: {exc}"
        return Finding("error", params, "signals", None, None, t, detail)
    diff = _compare(fields, _fields(part, t + 1), t)
    if diff is None:
        return None
    name, bar, detail = diff
    return Finding(
        "lookahead",
        params,
        name,
        bar,
        _time(bars, bar) if bar is not None else None,
        t,
        detail + note,
    )


def _shocked(bars: pl.DataFrame, period: int, offset: int, factor: float) -> pl.DataFrame:
    """``bars`` with every bar ``j ≡ offset (mod period)``, ``j >= 1``, scaled by ``factor``
    (prices) and ``factor**4`` (volume): a large move the bars before ``j`` must not see."""
    idx = pl.int_range(pl.len())
    hit = (idx % period == offset) & (idx > 0)
    scale = {c: factor for c in ("open", "high", "low", "close")} | {"volume": factor**4}
    # a universe frame's coins (``<coin>__close`` ...) are shocked alike
    coins = {c: c.rsplit("__", 1)[1] for c in bars.columns if "__" in c}
    scale |= {c: scale[kind] for c, kind in coins.items() if kind in scale}
    return bars.with_columns(
        pl.when(hit).then(pl.col(c) * f).otherwise(pl.col(c)).alias(c)
        for c, f in scale.items()
        if c in bars.columns
    )


def _shock_scan(
    fam: StrategyFamily,
    bars: pl.DataFrame,
    params: dict[str, ParamValue],
    fields: Mapping[str, np.ndarray],
) -> tuple[Finding | None, int, bool]:
    """Catch one-bar leaks on any bar, also entries a future bar *suppresses* (no change point
    marks them): shock every ``period``-th bar up and down, ``period`` = warm-up + 3, at every
    offset. Where no shocked bar lies within the warm-up before bar ``b``, an honest signal at
    ``b`` cannot move; one that moves is confirmed by cutting the shocked bars at ``b`` (so a
    family whose memory is longer than it declares costs confirmations, never a false finding).
    Returns (finding, runs, complete): not complete when the memory is too long for the data or
    the confirmations ran out (at most two per run, ``2 × period`` in all)."""
    n = bars.height
    warm = fam.warmup(params)
    period = warm + 3
    if period > min(MAX_SHOCK_PERIOD, n // 2):
        return None, 0, False  # memory too long for this data: truncation points only
    idx = np.arange(n)
    series = {k: v for k, v in fields.items() if v.ndim == 1}
    runs = confirmations = 0
    for offset in range(period):
        since = (idx - offset) % period
        quiet = (idx - since < 1) | (since >= warm + 2)  # no shocked bar in [b - warm - 1, b]
        for factor in (SHOCK, 1 / SHOCK):
            shocked = _shocked(bars, period, offset, factor)
            runs += 1
            try:
                got = _fields(_run(fam, shocked, params), n)
            except OutsideInput:
                raise
            except Exception:
                continue
            moved = np.zeros(n, dtype=bool)
            for name, arr in series.items():
                if name in got and got[name].shape == arr.shape:
                    moved |= _differs(got[name], arr)
            for b in np.flatnonzero(moved & quiet)[:2]:
                if confirmations >= max(MAX_SHOCK_CONFIRMATIONS, 2 * period):
                    return None, runs, False
                confirmations += 1
                note = f" (bars {offset}+{period}k scaled by {factor:.3f})"
                found = _truncated(fam, shocked, params, got, int(b), note=note)
                runs += 1
                if found is not None and found.kind == "lookahead":
                    return found, runs, True
    return None, runs, True


def _check_set(
    fam: StrategyFamily,
    bars: pl.DataFrame,
    params: dict[str, ParamValue],
    *,
    seed: int,
    shock: bool = True,
) -> tuple[list[Finding], int, int, bool, bool]:
    """(findings, truncation points checked, shock-scan runs, shock scan partial, exercised) for
    one parameter set."""
    try:
        full = _run(fam, bars, params)
    except OutsideInput as exc:
        return [Finding("outside-input", params, "signals", detail=str(exc))], 0, 0, False, False
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        return [Finding("error", params, "signals", detail=detail)], 0, 0, False, False
    n = bars.height
    fields = _fields(full, n)
    exercised = bool((full.entries.any()) or (np.asarray(full.flags) & 4).any())
    points = truncation_points(fields, warmup=fam.warmup(params), seed=seed)
    checked = runs = 0
    partial = False
    try:
        for t in points:
            checked += 1
            found = _truncated(fam, bars, params, fields, t)
            if found is not None:
                return [found], checked, 0, False, exercised
        if shock:
            found, runs, complete = _shock_scan(fam, bars, params, fields)
            if found is not None:
                return [found], checked, runs, False, exercised
            partial = not complete
    except OutsideInput as exc:
        finding = Finding("outside-input", params, "signals", detail=str(exc))
        return [finding], checked, runs, False, exercised
    return [], checked, runs, partial, exercised


def recursive_check(
    fam: StrategyFamily, bars: pl.DataFrame, params: dict[str, ParamValue], *, starts: int = 3
) -> list[Finding]:
    """Signals after the warm-up must not depend on how much history came before them."""
    n = bars.height
    warm = fam.warmup(params)
    try:
        full = _fields(_run(fam, bars, params), n)
    except Exception:
        return []
    out: list[Finding] = []
    for s in np.linspace(0, n // 2, starts + 1)[1:].astype(int):
        if n - s <= 2 * warm + 2:
            continue
        try:
            later = _fields(_run(fam, bars.slice(int(s)), params), n - int(s))
        except Exception:
            continue
        begin = warm + 1
        for name in ("flags", "stop_distance"):
            if name not in full or name not in later:
                continue
            diff = _differs(later[name][begin:], full[name][int(s) + begin :])
            if diff.any():
                bar = int(s) + begin + int(np.argmax(diff))
                detail = (
                    f"{int(diff.sum())} bars differ when history starts at bar {int(s)} "
                    f"(declared warm-up {warm})"
                )
                out.append(Finding("recursive", params, name, bar, _time(bars, bar), None, detail))
                break
    return out


def audit_family(
    fam: StrategyFamily,
    bars: pl.DataFrame,
    *,
    data: str = "bars",
    samples: int = 6,
    seed: int = 0,
    params: Sequence[Mapping[str, Any]] | None = None,
    recursive: bool = True,
    shock: bool = True,
) -> AuditReport:
    """Run the lookahead audit (and the recursive check) of ``fam`` on ``bars``; ``shock=False``
    skips the shock scan (truncation points only)."""
    require_fitting_frame(fam, bars)
    t0 = time.perf_counter()
    sets = (
        [fam.validate(p) for p in params] if params else param_sets(fam, samples=samples, seed=seed)
    )
    report = AuditReport(fam.name, int(fam.version), data, bars.height, len(sets), 0, 0)
    with no_outside_input():  # one block for the whole audit: the nested ones per call are cheap
        for i, p in enumerate(sets):
            found, points, runs, partial, exercised = _check_set(
                fam, bars, p, seed=seed + i, shock=shock
            )
            report.points = max(report.points, points)
            report.shock_runs += runs
            report.shock_partial += int(partial)
            report.exercised += int(exercised)
            report.findings += found
            if found and found[0].kind in ("outside-input", "error"):
                break
        if recursive and not report.findings:
            for p in sets[:3]:
                report.recursive += recursive_check(fam, bars, p)
    report.seconds = time.perf_counter() - t0
    return report


def default_audit_bars(
    history_dir: str | Path | None,
    *,
    market: str = "spot",
    symbol: str = "BTCUSDT",
    interval: str = "1h",
    max_bars: int = 20_000,
) -> tuple[pl.DataFrame, str]:
    """The bars an audit runs on when none are given: the most recent ``max_bars`` of the store's
    series when it holds enough, else seeded synthetic bars with bull/bear/sideways/high-volatility
    regimes (14,800 hourly bars), so every kind of signal has a chance to fire."""
    if history_dir is not None:
        try:
            bars = load_store(history_dir, market=market, symbol=symbol, interval=interval)
        except CandleError:
            bars = None
        if bars is not None and bars.height >= 2_000:
            return bars.tail(max_bars), f"{market} {symbol} {interval} (store)"
    return synthetic_bars(), "synthetic regimes (no store data)"
