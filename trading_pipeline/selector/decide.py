"""The 5-minute decision: champion model + closed candles → what each bot should run.

:func:`decide_once` is pure: the model, the bars, the time and the choices in force go in,
one :class:`~trading_pipeline.selector.decisions.Decision` per bot comes out. Per bot the
eligible candidates are those whose family the bot allows and whose symbol it trades, plus
cash; the model's probabilities are renormalised over them.

Hysteresis keeps bots from flapping (every switch costs fees and slippage on both legs): the
model's top pick replaces the choice in force only when it

- beats it by at least ``margin`` probability points (clearly better), or
- has stayed on top for ``persist`` consecutive ticks *with new inputs* (it persisted).

Ticks on the same closed candles (an hourly series seen every 5 minutes gives 12 ticks per
bar) are the same evidence read again, so they do not count towards ``persist``.

:class:`Decider` holds the champion (loaded once, reloaded only when the ``champion`` alias
points at another version: one registry lookup per tick), reads candles through a
:class:`~trading_pipeline.selector.live.CandleSource`, records every decision and says which
bots changed. Without a champion every bot gets cash, reason ``"no champion"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from trading_pipeline.handoff import CASH, NO_CHAMPION, BotLike
from trading_pipeline.history.layout import Series
from trading_pipeline.market.momentum_pick import MomentumPick, momentum_pick
from trading_pipeline.market.schema import INTERVAL_MS
from trading_pipeline.regimes.base import UNKNOWN, RegimeLabeller
from trading_pipeline.regimes.current import HISTORY_DAYS, current_regime
from trading_pipeline.selector.decisions import Decision, DecisionStore, inputs_hash
from trading_pipeline.selector.live import CandleSource
from trading_pipeline.selector.registry import CHAMPION, ModelRegistry
from trading_pipeline.settings import DataLayout

MODEL_NAME = "strategy-selector"
EXPERIMENT = "strategy-selector"
REGIME_LABELLER = "rules"
FEAR_GREED = "x.fear_greed"  # the one state feature that does not come from the bars

DEFAULT_PERSIST = 3
DEFAULT_MARGIN = 0.15


class CandidateLike(Protocol):
    """What the decision reads of a candidate (``selector.model.Candidate``)."""

    @property
    def id(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def params(self) -> Mapping[str, Any]: ...
    @property
    def series(self) -> str: ...
    @property
    def fee(self) -> float | None: ...
    @property
    def slippage(self) -> float | None: ...


class SelectorLike(Protocol):
    """What the decision needs from a selector model (``selector.model.SelectorModel``)."""

    @property
    def candidates(self) -> Sequence[CandidateLike]: ...
    @property
    def series(self) -> Sequence[str]: ...
    @property
    def interval(self) -> str: ...
    @property
    def warmup_bars(self) -> int: ...

    def predict_proba(self, state: Mapping[str, float]) -> dict[str, float]: ...


StateFn = Callable[..., Mapping[str, float]]


@dataclass(frozen=True)
class Hysteresis:
    """How clearly or how long a new pick must lead before it replaces the choice in force."""

    persist: int = DEFAULT_PERSIST
    margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        if self.persist < 1:
            raise ValueError(f"persist must be at least 1 tick, got {self.persist}")
        if not (0.0 <= self.margin <= 1.0) or math.isnan(self.margin):
            raise ValueError(
                f"margin must be a probability difference in [0, 1], got {self.margin}"
            )


@dataclass(frozen=True)
class ModelRef:
    """Which registered model version made a decision."""

    name: str
    version: int | None
    run_id: str | None = None


@dataclass(frozen=True)
class TickResult:
    """One tick: every bot's decision (with row ids when recorded) and the bots that changed."""

    at: datetime
    decisions: list[Decision]
    model: ModelRef
    changed: tuple[str, ...] = field(default=())

    @property
    def changed_ids(self) -> tuple[int, ...]:
        return tuple(d.id for d in self.decisions if d.changed and d.id is not None)

    @property
    def run_key(self) -> str:
        """A key naming this tick's changes (the recorded decision ids), for run de-duplication."""
        ids = self.changed_ids
        if ids:
            return "decisions-" + "-".join(map(str, ids))
        stamp = self.at.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
        return f"decisions-{stamp}-" + "-".join(self.changed)


def _symbol(series: str) -> str | None:
    try:
        return Series.parse(series).symbol
    except ValueError:
        return None


def _interval(series: str) -> str | None:
    try:
        return Series.parse(series).interval
    except ValueError:
        return None


def is_cash(c: CandidateLike) -> bool:
    return c.id == CASH or c.family == CASH


def eligible_candidates(
    candidates: Sequence[CandidateLike], bot: BotLike, symbols: Sequence[str] | None = None
) -> list[CandidateLike]:
    """The candidates ``bot`` may run: an allowed family tuned on one of its symbols (or of
    ``symbols``, a momentum pick) at its own bar interval, and cash."""
    allowed = bot.symbols if symbols is None else tuple(s for s in symbols if s in bot.symbols)
    out = []
    for c in candidates:
        if is_cash(c) or (
            bot.allows(c.family)
            and _symbol(c.series) in allowed
            and _interval(c.series) == bot.interval
        ):
            out.append(c)
    return out


def momentum_picks(
    candles: CandleSource, fleet: Sequence[BotLike], now: datetime
) -> dict[str, MomentumPick]:
    """Each momentum bot's (``momentum_top`` > 0) pick at ``now`` from bars closed by then;
    a symbol whose candles cannot be read is listed as unranked."""
    out: dict[str, MomentumPick] = {}
    for bot in fleet:
        top = int(getattr(bot, "momentum_top", 0) or 0)
        if top < 1:
            continue
        lookback = int(getattr(bot, "momentum_lookback", 168))
        frames: dict[str, pl.DataFrame | None] = {}
        for symbol in bot.symbols:
            key = Series("spot", symbol, bot.interval).key
            try:
                frames[symbol] = candles.bars([key], now=now, lookback=lookback + 1).get(key)
            except Exception:  # a coin not fetched yet (or the venue down): not ranked
                frames[symbol] = None
        out[bot.name] = momentum_pick(
            frames, at=now, interval=bot.interval, top=top, lookback=lookback
        )
    return out


def renormalise(probs: Mapping[str, float], ids: Sequence[str]) -> dict[str, float]:
    """``probs`` restricted to ``ids`` and rescaled to sum to 1 (all on cash if they sum to 0)."""
    raw = {i: max(float(probs.get(i, 0.0)), 0.0) for i in ids}
    raw = {i: (p if math.isfinite(p) else 0.0) for i, p in raw.items()}
    total = sum(raw.values())
    if total <= 0.0:
        return {i: (1.0 if i == CASH else 0.0) for i in ids}
    return {i: p / total for i, p in raw.items()}


def regime_lookback(interval: str, labeller: str = REGIME_LABELLER) -> int:
    """Bars the regime labeller needs at ``interval`` (its memory in days, in bars)."""
    days = HISTORY_DAYS.get(labeller, 400)
    return int(days * 86_400_000 / INTERVAL_MS[interval]) + 1


def bars_needed(model: SelectorLike) -> int:
    """How many closed bars per series a tick reads: the state's warm-up or the regime's memory."""
    return max(int(model.warmup_bars), regime_lookback(model.interval)) + 1


def _default_state_fn() -> StateFn:
    from trading_pipeline.selector.state import latest_state

    return latest_state


def _default_labeller() -> RegimeLabeller:
    from trading_pipeline.regimes import get_labeller

    return get_labeller(REGIME_LABELLER)


def _cash_decision(bot: BotLike, now: datetime, *, proposed: str = CASH, **fields: Any) -> Decision:
    return Decision(
        decided_at=now,
        bot=bot.name,
        choice=CASH,
        family=CASH,
        version=0,
        params={},
        series="",
        symbols=(),
        proposed=proposed,
        **fields,
    )


def no_champion_decisions(
    now: datetime,
    current: Mapping[str, Decision],
    *,
    model_name: str = MODEL_NAME,
    fleet: Sequence[BotLike],
) -> list[Decision]:
    """Every bot on cash. A change only for a bot that was running something else."""
    out = []
    for bot in fleet:
        cur = current.get(bot.name)
        out.append(
            _cash_decision(
                bot,
                now,
                regime=UNKNOWN,
                probabilities={CASH: 1.0},
                inputs_hash=inputs_hash({}),
                model_name=model_name,
                model_version=None,
                model_run_id=None,
                changed=cur is not None and cur.choice != CASH,
                reason=NO_CHAMPION,
            )
        )
    return out


def _pick(probs: Mapping[str, float], order: Sequence[str], current: str | None) -> str:
    """The top id; ties keep the current choice, then prefer cash, then the model's order."""
    rank = {i: n for n, i in enumerate(order)}
    return max(order, key=lambda i: (probs[i], i == current, i == CASH, -rank[i]))


def _hysteresis(
    top: str,
    probs: Mapping[str, float],
    cur: Decision | None,
    new_inputs: bool,
    h: Hysteresis,
    model_version: int | None,
) -> tuple[str, int, bool, str]:
    """``(choice, streak, changed, reason)`` for one bot."""
    p_top = probs[top]
    if cur is None or cur.reason == NO_CHAMPION:  # nothing chosen by a model yet: adopt
        return top, 0, True, f"first model decision: {top} p={p_top:.3f}"
    held = cur.choice
    if held not in probs:
        return (
            top,
            0,
            top != held,
            (f"{held} is not offered by model v{model_version}: {top} p={p_top:.3f}"),
        )
    if top == held:
        return held, 0, False, f"model agrees: {held} p={p_top:.3f}"
    lead = p_top - probs[held]
    # Same pick as last tick: one more tick on top, unless the inputs did not change.
    streak = 1
    if cur.proposed == top:
        streak = cur.streak + 1 if new_inputs else max(cur.streak, 1)
    if lead >= h.margin:
        return (
            top,
            0,
            True,
            (f"{top} p={p_top:.3f} beats {held} p={probs[held]:.3f} by {lead:.3f} >= {h.margin:g}"),
        )
    if streak >= h.persist:
        return (
            top,
            0,
            True,
            (
                f"{top} on top for {streak} ticks with new inputs (>= {h.persist}); "
                f"p={p_top:.3f} vs {held} p={probs[held]:.3f}"
            ),
        )
    return (
        held,
        streak,
        False,
        (
            f"holding {held} p={probs[held]:.3f}: {top} leads by {lead:.3f} < {h.margin:g}, "
            f"on top {streak}/{h.persist} ticks"
        ),
    )


def decide_once(
    model: SelectorLike,
    bars: Mapping[str, pl.DataFrame],
    now: datetime,
    current: Mapping[str, Decision],
    *,
    model_ref: ModelRef | None = None,
    fleet: Sequence[BotLike],
    hysteresis: Hysteresis = Hysteresis(),
    labeller: RegimeLabeller | None = None,
    state_fn: StateFn | None = None,
    fear_greed: pl.DataFrame | None = None,
    picks: Mapping[str, MomentumPick] | None = None,
) -> list[Decision]:
    """One decision per bot of ``fleet`` from closed ``bars`` (series key → frame) at ``now``.

    ``picks`` (bot → :class:`MomentumPick`, computed causally at ``now``) restrict a momentum
    bot to its top symbols; the pick is recorded in the decision's reason.

    ``current`` holds each bot's choice in force (its latest decision) with the hysteresis
    state. Nothing is read or written: the caller records the result.
    """
    ref = model_ref or ModelRef(MODEL_NAME, None)
    missing = [k for k in model.series if k not in bars or bars[k].height == 0]
    if missing:
        raise ValueError(f"no closed bars for {', '.join(missing)}")
    used = {k: bars[k] for k in model.series}
    needs_fng = FEAR_GREED in getattr(model, "feature_names", ())
    state_kwargs: dict[str, Any] = {"interval": model.interval}
    if needs_fng and fear_greed is not None:
        state_kwargs["fear_greed"] = fear_greed
    state = dict((state_fn or _default_state_fn())(used, **state_kwargs))
    note = ""
    if needs_fng and FEAR_GREED not in state:
        state[FEAR_GREED] = math.nan  # the model's imputer fills it; said in the reason
        note = f" ({FEAR_GREED} unavailable: imputed)"
    labeller = labeller or _default_labeller()
    if getattr(model, "needs_regimes", False):  # a regime-lookup baseline is the champion
        regimes = {k: current_regime(used[k], labeller) for k in model.series}
        probs = model.predict_proba(state, regimes=regimes)  # type: ignore[call-arg]
    else:
        probs = model.predict_proba(state)
    # A model trained to pick by expected return (its CV chose that rule) ranks by it here too;
    # the hysteresis margin stays on probabilities.
    expected = (
        model.expected_returns(state)  # type: ignore[attr-defined]
        if getattr(model, "decision_rule", "argmax") == "expected_return"
        else None
    )
    regime = current_regime(used[model.series[0]], labeller) if model.series else UNKNOWN
    digest = inputs_hash(used, extra={"model": ref.name, "version": ref.version})
    by_id = {c.id: c for c in model.candidates}
    out = []
    for bot in fleet:
        pick = (picks or {}).get(bot.name)
        cands = eligible_candidates(model.candidates, bot, pick.picked if pick else None)
        ids = [c.id for c in cands]
        if CASH not in by_id:
            ids.append(CASH)
        p = renormalise(probs, ids)
        cur = current.get(bot.name)
        new_inputs = cur is None or cur.inputs_hash != digest
        scores = p if expected is None else {i: expected.get(i, 0.0) for i in ids}
        top = _pick(scores, ids, cur.choice if cur else None)
        choice, streak, changed, reason = _hysteresis(
            top, p, cur, new_inputs, hysteresis, ref.version
        )
        c = by_id.get(choice)
        common: dict[str, Any] = {
            "regime": regime,
            "probabilities": p,
            "inputs_hash": digest,
            "model_name": ref.name,
            "model_version": ref.version,
            "model_run_id": ref.run_id,
            "changed": changed,
            "reason": reason + note + (f"; {pick.describe()}" if pick else ""),
            "streak": streak,
        }
        if c is None or is_cash(c):
            d = _cash_decision(bot, now, proposed=top, **common)
        else:
            sym = _symbol(c.series)
            d = Decision(
                decided_at=now,
                bot=bot.name,
                choice=c.id,
                family=c.family,
                version=int(c.version),
                params=dict(c.params),
                series=c.series,
                symbols=(sym,) if sym else (),
                proposed=top,
                fee=getattr(c, "fee", None),  # None from models pickled before candidates had it
                slippage=getattr(c, "slippage", None),
                **common,
            )
        out.append(d)
    return out


def champion_ref(registry: ModelRegistry, name: str = MODEL_NAME) -> ModelRef | None:
    """The version (and run) the ``champion`` alias points at: one cheap registry lookup."""
    client = getattr(registry, "client", None)
    if client is not None and hasattr(client, "get_model_version_by_alias"):
        from mlflow.exceptions import MlflowException

        try:
            mv = client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:
            return None  # no such model or no champion yet
        return ModelRef(name, int(mv.version), mv.run_id or None)
    found = registry.champion(name)
    return None if found is None else ModelRef(name, found[0], None)


def embedded_tracking_uri(data_dir: str | Path) -> str:
    """``DataLayout``'s embedded tracking URI without creating its folder (read-only callers)."""
    return DataLayout.under(data_dir).mlflow_tracking_uri


def open_registry(tracking_uri: str, *, experiment: str = EXPERIMENT) -> ModelRegistry | None:
    """The MLflow registry at ``tracking_uri``; None for an embedded store not created yet
    (nothing was ever registered, and a read must not create the database)."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        if not db.exists():
            return None
    from trading_pipeline.selector.registry import MlflowRegistry

    return MlflowRegistry(tracking_uri, experiment)


class Decider:
    """Runs ticks: champion (cached by version) + candles → decisions, recorded in the store.

    ``registry`` may be None with ``open_registry`` given: the registry is then opened on the
    first tick that finds its store (a long-running loop started before any training).
    """

    def __init__(
        self,
        registry: ModelRegistry | None,
        candles: CandleSource,
        store: DecisionStore | None = None,
        *,
        model_name: str = MODEL_NAME,
        fleet: Sequence[BotLike],
        hysteresis: Hysteresis = Hysteresis(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        state_fn: StateFn | None = None,
        labeller: RegimeLabeller | None = None,
        fear_greed: Callable[[datetime], pl.DataFrame | None] | None = None,
        open_registry: Callable[[], ModelRegistry | None] | None = None,
    ):
        self.registry = registry
        self.open_registry = open_registry
        self.fear_greed = fear_greed
        self.candles = candles
        self.store = store
        self.model_name = model_name
        self.fleet = tuple(fleet)
        self.hysteresis = hysteresis
        self.clock = clock
        self.state_fn = state_fn
        self.labeller = labeller
        self.model: SelectorLike | None = None
        self.ref: ModelRef | None = None
        self.loads = 0  # how many times a model was loaded (tests, metadata)

    def refresh_model(self) -> ModelRef | None:
        """Load the champion if the alias moved since the last tick; None when there is none."""
        if self.registry is None and self.open_registry is not None:
            self.registry = self.open_registry()  # None until the first model is registered
        ref = None if self.registry is None else champion_ref(self.registry, self.model_name)
        if ref is None:
            self.model, self.ref = None, None
            return None
        if self.ref is not None and self.model is not None and ref.version == self.ref.version:
            return self.ref
        assert self.registry is not None
        for _ in range(3):  # the alias may move while we load: load until it stands still
            model = self.registry.load(self.model_name, CHAMPION)
            self.loads += 1
            after = champion_ref(self.registry, self.model_name)
            if after is not None and after.version == ref.version:
                break
            if after is None:
                self.model, self.ref = None, None
                return None
            ref = after
        self.model, self.ref = model, ref
        return ref

    def decide(
        self, now: datetime, current: Mapping[str, Decision]
    ) -> tuple[list[Decision], ModelRef]:
        ref = self.refresh_model()
        if ref is None or self.model is None:
            ref = ModelRef(self.model_name, None)
            return no_champion_decisions(
                now, current, model_name=self.model_name, fleet=self.fleet
            ), ref
        model = self.model
        bars = self.candles.bars(list(model.series), now=now, lookback=bars_needed(model))
        decisions = decide_once(
            model,
            bars,
            now,
            current,
            model_ref=ref,
            fleet=self.fleet,
            hysteresis=self.hysteresis,
            labeller=self.labeller,
            state_fn=self.state_fn,
            fear_greed=self.fear_greed(now) if self.fear_greed is not None else None,
            picks=momentum_picks(self.candles, self.fleet, now),
        )
        return decisions, ref

    def tick(
        self, now: datetime | None = None, *, record: bool = True, replay: bool = False
    ) -> TickResult:
        """Decide for every bot at ``now`` (default: the clock) and record it (unless told not).

        A live tick follows every decision recorded so far; a ``replay`` only those strictly
        before ``now``, so replaying a time gives the same answer before and after recording it.
        """
        now = (now or self.clock()).astimezone(UTC)
        current: dict[str, Decision] = {}
        if self.store is not None:
            current = self.store.current(before=now if replay else None)
        decisions, ref = self.decide(now, current)
        if record and self.store is not None:
            decisions = self.store.record_all(decisions)
        changed = tuple(d.bot for d in decisions if d.changed)
        return TickResult(at=now, decisions=decisions, model=ref, changed=changed)
