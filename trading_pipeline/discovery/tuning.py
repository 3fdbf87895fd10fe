"""Walk-forward Optuna tuning of one strategy family on one series, out-of-sample only.

Design (nested walk-forward, one Optuna study per fold):

* The bars are cut into ``folds`` walk-forward folds (:func:`~.splits.walk_forward`): each
  test window follows its train window; the test windows tile the end of the data.
* Fold ``k`` has its own study ``{family}-v{version}-{series}-wf{k}of{K}`` (the *study group*
  ``{family}-v{version}-{series}`` names them all). Its trials sample the family's search space
  and are scored on the train window ``k`` ONLY: the window is cut into ``segments``
  consecutive pieces, the objective is the mean annualised Sharpe over the pieces (which
  rewards consistency), and each piece is reported with ``trial.report`` so the
  :class:`~optuna.pruners.MedianPruner` stops hopeless trials early.
* The parameters used on test window ``k`` are the best trial of study ``k``. No bar of test
  window ``k`` (or after it) is ever read while tuning fold ``k``: signals are computed on bars
  up to the train window's end (see :mod:`.evaluate`). A test changes the test-window bars and
  checks the chosen parameters do not move.
* The only performance reported is the concatenation of the test windows, each traded with
  its own fold's parameters, fees and slippage on, as one account whose position carries over
  the fold boundaries (:mod:`.results`). The parameters to deploy
  now are the last fold's (tuned on the most recent train window).
* Every trial of every fold is also evaluated on its fold's test window *after* tuning (never
  seen by the sampler): those returns feed the deflated Sharpe's trial variance and PBO.

Seeded (``TPESampler(seed + k)`` for fold ``k``), reproducible, and resumable: ``n_trials``
is the target number of finished trials per fold, so a killed study re-run with the same
command tops up to it and a larger number continues from where it stopped. Trials run
against an in-memory copy of the study and are appended to the real storage in batches
(:func:`optimize_buffered`; a killed run loses at most one batch): a journal write costs
more than a whole backtest here, a PostgreSQL one (~55 ms) far more. The study's
settings and the data fingerprint live in the study's user attributes so ``tune-worker``
processes (possibly on other hosts, on PostgreSQL) can join with nothing but the study name.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from trading_pipeline.backtest.costs import CostModel, RiskRules
from trading_pipeline.discovery.batch import (
    BatchEvaluator,
    check_sampler,
    default_ask,
    direct_runner,
    make_sampler,
    run_asked,
    segment_bounds,
)
from trading_pipeline.discovery.evaluate import Evaluator
from trading_pipeline.discovery.portfolio_eval import evaluator_for
from trading_pipeline.discovery.splits import Fold, walk_forward
from trading_pipeline.discovery.storage import add_trials
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.base import StrategyFamily
from trading_pipeline.strategies.universe import require_fitting_frame

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

SPEC_ATTR = "tp_spec"
FEE_ATTR = "fee"  # the cost model, also on its own: fee and slippage per side, fractions
SLIPPAGE_ATTR = "slippage"
DEFAULT_BATCH = 50


@dataclass(frozen=True)
class WalkForward:
    """How the bars are cut: ``folds`` test windows, rolling (or anchored) train windows of
    ``train_bars`` (default: all bars before the first test window), ``embargo`` bars skipped
    between train and test, and ``segments`` pieces of each train window for the objective."""

    folds: int = 4
    train_bars: int | None = None
    anchored: bool = False
    embargo: int = 0
    segments: int = 3

    def split(self, n_bars: int) -> list[Fold]:
        if self.segments < 1:
            raise UserInputError("segments must be at least 1")
        try:
            folds = walk_forward(
                n_bars,
                folds=self.folds,
                train_bars=self.train_bars,
                anchored=self.anchored,
                embargo=self.embargo,
            )
        except ValueError as exc:
            raise UserInputError(str(exc)) from exc
        if min(f.train_stop - f.train_start for f in folds) < 2 * self.segments:
            raise UserInputError(f"{n_bars} bars are too few for {self.folds} folds")
        return folds


@dataclass(frozen=True)
class TuneSpec:
    """Everything that defines a study group; stored in each fold study's user attributes."""

    family: str
    family_version: int
    series: str
    interval: str
    walk: WalkForward
    costs: CostModel
    cash: float
    n_bars: int
    data_fingerprint: str
    code_fingerprint: str = ""  # the family's source (``code_fingerprint``); "" before it existed

    @property
    def study_group(self) -> str:
        """``{family}-v{version}-{series}``, plus ``-c{8 hex}`` naming the strategy's code: a
        change to its source starts a new study instead of resuming the old trials."""
        base = study_name(self.family, self.family_version, self.series)
        return f"{base}-c{self.code_fingerprint[:8]}" if self.code_fingerprint else base

    def fold_study(self, fold: int) -> str:
        return f"{self.study_group}-wf{fold + 1}of{self.walk.folds}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return d

    def cost_fractions(self) -> dict[str, float]:
        """The cost model the study was tuned with: ``{"fee", "slippage"}`` per side, fractions
        (what a deployed assignment carries to the bot)."""
        return {"fee": float(self.costs.fee), "slippage": float(self.costs.slippage)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TuneSpec:
        return cls(
            family=d["family"],
            family_version=int(d["family_version"]),
            series=d["series"],
            interval=d["interval"],
            walk=WalkForward(**d["walk"]),
            costs=CostModel(**d["costs"]),
            cash=float(d["cash"]),
            n_bars=int(d["n_bars"]),
            data_fingerprint=d["data_fingerprint"],
            code_fingerprint=str(d.get("code_fingerprint", "")),
        )


def study_name(family: str, version: int, series: str) -> str:
    """The study group's name: ``{family}-v{version}-{series key}``."""
    return f"{family}-v{version}-{series}"


def fingerprint(bars: pl.DataFrame) -> str:
    """A short hash of the bars' times and OHLC (workers refuse to join with other data)."""
    h = hashlib.sha256()
    # a universe frame (portfolio families) adds every coin's ``<coin>__<price>`` columns
    coins = [c for c in bars.columns if c.endswith(("__open", "__high", "__low", "__close"))]
    for col in ("open_time", "open", "high", "low", "close", *coins):
        if col in bars.columns:
            h.update(bars[col].to_physical().to_numpy().tobytes())
    return h.hexdigest()[:16]


def code_fingerprint(family: StrategyFamily) -> str:
    """A hash of the source file that defines ``family`` (its class, indicators and anything
    else in that module), its name and version: what the study's trials were computed with."""
    cls = type(family)
    h = hashlib.sha256(
        f"{cls.__module__}.{cls.__qualname__}:{family.name}:v{family.version}".encode()
    )
    try:
        path = inspect.getsourcefile(cls)
        if path:
            h.update(Path(path).read_bytes())
    except (OSError, TypeError):
        h.update(repr(sorted(vars(cls))).encode())
    return h.hexdigest()[:16]


def make_spec(
    bars: pl.DataFrame,
    family: StrategyFamily,
    *,
    series: str,
    interval: str,
    walk: WalkForward | None = None,
    costs: CostModel | None = None,
    cash: float = 1000.0,
) -> TuneSpec:
    require_fitting_frame(family, bars)
    walk = walk or WalkForward()
    walk.split(bars.height)  # validate before any study is created
    return TuneSpec(
        family=family.name,
        family_version=int(family.version),
        series=series,
        interval=interval,
        walk=walk,
        costs=costs or CostModel(),
        cash=cash,
        n_bars=bars.height,
        data_fingerprint=fingerprint(bars),
        code_fingerprint=code_fingerprint(family),
    )


def _quiet() -> None:
    import optuna

    # ERROR, not WARNING: a failed trial's exception is raised to the caller (one line in the
    # CLI); optuna's "Trial failed" warning would print its traceback first
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def make_objective(
    evaluator: Evaluator, fold: Fold, segments: int
) -> Callable[[optuna.Trial], float]:
    """The objective of fold ``fold``: mean Sharpe over ``segments`` pieces of its train window."""
    import optuna

    edges = np.linspace(fold.train_start, fold.train_stop, segments + 1).astype(int)
    bounds = [(int(a), int(b)) for a, b in itertools.pairwise(edges.tolist())]

    def objective(trial: optuna.Trial) -> float:
        params = evaluator.family.suggest(trial)
        metrics = evaluator.segments(params, bounds)
        sharpes = [float(m["sharpe"]) for m in metrics]
        for j in range(len(sharpes)):
            trial.report(float(np.mean(sharpes[: j + 1])), j)
            if j < len(sharpes) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(sharpes))

    return objective


def batch_runner(
    evaluator: Evaluator,
    segments: int,
    sampler: str,
    ask: int | None,
    seed: int | None = None,
    write: int = DEFAULT_BATCH,
) -> Callable[[Fold], Callable[[optuna.Study, int], None]] | None:
    """Per fold, the batched ask/tell loop of :mod:`.batch` (``None`` when the family has no
    compiled form or ``ask == 0``: Optuna's own loop, one ``signals()`` per trial, then)."""
    check_sampler(sampler, ask)
    k = default_ask(sampler) if ask is None else ask
    batch_eval = BatchEvaluator(evaluator)
    if sampler != "fast-random" and (k == 0 or not batch_eval.fused):
        return None

    def for_fold(fold: Fold) -> Callable[[optuna.Study, int], None]:
        bounds = segment_bounds(fold.train_start, fold.train_stop, segments)
        if sampler == "fast-random":
            return direct_runner(batch_eval, bounds, k, seed, fold.index, write)
        return lambda study, n: run_asked(study, batch_eval, bounds, n, k)

    return for_fold


def _finished_states() -> tuple[optuna.trial.TrialState, ...]:
    import optuna

    return (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=_finished_states()))


def _trial_key(trial: optuna.trial.FrozenTrial) -> tuple[Any, ...]:
    """What tells a trial written from an in-memory copy apart from every other trial (the
    storage gives it a new number and id): its start time, parameters, values and state."""
    params = tuple(sorted(trial.params.items()))
    return (trial.datetime_start, params, tuple(trial.values or ()), trial.state)


def optimize_buffered(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    *,
    batch: int = DEFAULT_BATCH,
    run: Callable[[optuna.Study, int], None] | None = None,
    advance: Callable[[int], None] | None = None,
) -> int:
    """Run ``n_trials`` trials of ``study`` in memory, writing them to its storage in batches.

    Each batch starts from an in-memory copy of every finished trial in the storage (other
    workers' included: the previous batch's copy, topped up with the trials other workers
    wrote since, so a batch costs the same among workers as alone), runs up
    to ``batch`` trials with the study's own sampler and pruner (the same objects across
    batches, so a seeded sampler stays reproducible), then appends the finished trials to the
    storage in one go (one journal append: :func:`.storage.add_trials`), which numbers them
    (also when the batch is interrupted by Ctrl-C or an error). A killed process loses at
    most one unwritten batch. ``batch=1`` writes every trial as it finishes. ``run(mem, k)``,
    when given, runs the ``k`` trials instead of ``mem.optimize`` (the batched ask/tell of
    :mod:`.batch`; a ``run`` with ``direct = True`` gets the study itself and writes ``batch``
    at a time). The study's system attributes (a QMC sampler's position) travel through the
    in-memory copy. ``advance(k)``, when given, is called after each batch with the number of
    trials it ran (a progress bar).
    """
    import optuna

    if run is not None and getattr(run, "direct", False):  # writes to the storage itself
        run(study, n_trials)
        if advance is not None:
            advance(n_trials)
        return n_trials
    done = 0
    mem: optuna.Study | None = None
    seen: set[int] = set()  # numbers of the stored trials the copy holds
    mine: set[tuple[Any, ...]] = set()  # the previous batch's own trials, as written
    while done < n_trials:
        k = min(batch, n_trials - done)
        stored = study.get_trials(deepcopy=False, states=_finished_states())
        new = [t for t in stored if t.number not in seen]
        foreign = [t for t in new if _trial_key(t) not in mine]
        if mem is None or len(new) - len(foreign) != len(mine):
            # the first batch (or the storage no longer holds what the copy was built from):
            # a fresh copy of every stored trial
            mem = optuna.create_study(
                direction="maximize", sampler=study.sampler, pruner=study.pruner
            )
            mem.add_trials(stored)
        elif foreign:
            # other workers' trials since the last batch join the copy: only those, so a
            # worker among others does not rebuild the whole study before every batch
            mem.add_trials(foreign)
        seen.update(t.number for t in new)
        mine = set()
        carried = study._storage.get_study_system_attrs(study._study_id)
        had = mem._storage.get_study_system_attrs(mem._study_id)
        for key, value in carried.items():
            if had.get(key) != value:
                mem._storage.set_study_system_attr(mem._study_id, key, value)
        base = len(mem.get_trials(deepcopy=False))
        try:
            if run is None:
                mem.optimize(objective, n_trials=k)
            else:
                run(mem, k)
        finally:  # Ctrl-C or an error: keep the trials that did finish
            fresh = [
                t for t in mem.get_trials(deepcopy=False)[base:] if t.state in _finished_states()
            ]
            add_trials(study, fresh)
            mine = {_trial_key(t) for t in fresh}
            for key, value in mem._storage.get_study_system_attrs(mem._study_id).items():
                if carried.get(key) != value:
                    study._storage.set_study_system_attr(study._study_id, key, value)
        done += k
        if advance is not None:
            advance(k)
    return done


SUPERSEDED = "superseded"  # prefix of a study group tuned with other data or settings, kept aside
WARM_START_TRIALS = 20  # best parameter sets per fold carried into the study that supersedes it


def supersede(
    spec: TuneSpec, storage: BaseStorage, *, keep: int = WARM_START_TRIALS
) -> dict[int, list[dict[str, Any]]]:
    """Make room for ``spec`` when its group's fold studies were tuned with other data or
    settings (new months of history, other folds or costs): each is copied aside under
    ``superseded-<its data fingerprint>-<name>`` (its trials still count when the series'
    search is deflated) and removed, and the ``keep`` best parameter sets of each fold are
    returned (fold index → params) to seed the new studies. The search resumes from where it
    was — re-scored on the new windows, since a trial's value on other data says nothing here.
    Nothing happens when the stored studies already match ``spec``."""
    import optuna

    prefix = f"{spec.study_group}-wf"
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    mine = [s for s in summaries if s.study_name.startswith(prefix)]
    stale = [s for s in mine if (s.user_attrs.get(SPEC_ATTR) or {}) != spec.to_json()]
    if not stale:
        return {}
    warm: dict[int, list[dict[str, Any]]] = {}
    for summary in stale:
        name = summary.study_name
        old = optuna.load_study(study_name=name, storage=storage)
        done = [
            t
            for t in old.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
        ]
        done.sort(key=lambda t: -float(t.value or 0.0))
        fold = int(name[len(prefix) :].split("of")[0]) - 1
        warm[fold] = [dict(t.params) for t in done[:keep]]
        tag = str((summary.user_attrs.get(SPEC_ATTR) or {}).get("data_fingerprint", "x"))[:8]
        optuna.copy_study(
            from_study_name=name,
            from_storage=storage,
            to_storage=storage,
            to_study_name=f"{SUPERSEDED}-{tag}-{name}",
        )
        optuna.delete_study(study_name=name, storage=storage)
    return warm


def _warm_start(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    params: list[dict[str, Any]],
    limit: int,
) -> int:
    """Evaluate ``params`` (at most ``limit``) on a fresh study's windows as its first trials,
    written in one batch; returns how many ran (0 when the study already has trials)."""
    import optuna

    if not params or limit <= 0 or study.get_trials(deepcopy=False):
        return 0
    mem = optuna.create_study(direction="maximize", sampler=study.sampler, pruner=study.pruner)
    for p in params[:limit]:
        mem.enqueue_trial(p, skip_if_exists=True)
    mem.optimize(objective, n_trials=min(len(params), limit))
    add_trials(study, [t for t in mem.get_trials(deepcopy=False) if t.state in _finished_states()])
    return min(len(params), limit)


def open_fold_study(
    spec: TuneSpec,
    fold: int,
    storage: BaseStorage,
    *,
    seed: int | None,
    create: bool,
    sampler_name: str = "tpe",
) -> optuna.Study:
    """Create (or load) fold ``fold``'s study with a seeded sampler (TPE by default, see
    :func:`.batch.make_sampler`) and a median pruner."""
    import optuna

    sampler = make_sampler(sampler_name, None if seed is None else seed + fold)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=10, n_warmup_steps=1)
    name = spec.fold_study(fold)
    if create:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
        stored = study.user_attrs.get(SPEC_ATTR)
        if stored is None:
            study.set_user_attr(SPEC_ATTR, spec.to_json())
            costs = spec.cost_fractions()
            study.set_user_attr(FEE_ATTR, costs["fee"])
            study.set_user_attr(SLIPPAGE_ATTR, costs["slippage"])
        elif TuneSpec.from_json(stored) != spec:
            raise UserInputError(
                f"study {name} exists with other settings or data; "
                "delete it or change --folds/--fee/--data"
            )
        return study
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError as exc:
        raise UserInputError(f"no study {name!r} in the storage") from exc


@dataclass(frozen=True)
class TuneRun:
    """What one call did: trials run per fold and the seconds spent in Optuna's loop."""

    study_group: str
    trials_run: int
    seconds: float


def tune(
    bars: pl.DataFrame,
    family: StrategyFamily,
    *,
    spec: TuneSpec,
    storage: BaseStorage,
    n_trials: int,
    seed: int | None = 0,
    risk: RiskRules | None = None,
    batch: int = DEFAULT_BATCH,
    sampler: str = "tpe",
    ask: int | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> TuneRun:
    """Top every fold study of ``spec`` up to ``n_trials`` finished trials (resumable).

    Families with a compiled form are evaluated ``ask`` trials per fused call (default:
    :func:`.batch.default_ask`), identical to one-at-a-time evaluation (see :mod:`.batch`).
    ``progress(done, total)``, when given, is called as trials finish (``total``: the trials
    this call runs over all folds)."""
    if n_trials < 0:
        raise UserInputError("--trials must be >= 0")
    _quiet()
    evaluator = evaluator_for(
        bars, family, interval=spec.interval, costs=spec.costs, risk=risk, cash=spec.cash
    )
    folds = spec.walk.split(bars.height)
    evaluator.warm_up(folds[0].train_start, folds[0].train_stop)
    runner = batch_runner(evaluator, spec.walk.segments, sampler, ask, seed, batch)
    ran = 0
    t0 = time.perf_counter()
    warm = supersede(spec, storage)
    studies = [
        open_fold_study(spec, fold.index, storage, seed=seed, create=True, sampler_name=sampler)
        for fold in folds
    ]
    advance = _counter(progress, sum(max(0, n_trials - _finished(s)) for s in studies))
    for fold, study in zip(folds, studies, strict=True):
        objective = make_objective(evaluator, fold, spec.walk.segments)
        if warm:  # resume the search from the best parameters of the superseded study
            seeds = warm.get(fold.index) or warm[max(warm)]
            warmed = _warm_start(study, objective, seeds, n_trials - _finished(study))
            ran += warmed
            if advance is not None:
                advance(warmed)
        todo = n_trials - _finished(study)
        if todo > 0:
            run = runner(fold) if runner else None
            ran += optimize_buffered(study, objective, todo, batch=batch, run=run, advance=advance)
    return TuneRun(spec.study_group, ran, time.perf_counter() - t0)


def _counter(
    progress: Callable[[float, float], None] | None, total: int
) -> Callable[[int], None] | None:
    """``advance(k)`` adding ``k`` finished trials to ``progress(done, total)`` (None without
    a ``progress``); reports ``(0, total)`` at once."""
    if progress is None:
        return None
    done = 0
    progress(0, total)

    def advance(k: int) -> None:
        nonlocal done
        done = min(total, done + k)
        progress(done, total)

    return advance


def load_spec(study_group: str, storage: BaseStorage) -> TuneSpec:
    """The settings stored with a study group (its first fold study)."""
    import optuna

    names = [
        s.study_name
        for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
        if s.study_name.startswith(f"{study_group}-wf1of")
    ]
    if not names:
        raise UserInputError(
            f"no study {study_group!r} in the storage; create it with `trading-pipeline tune`"
        )
    study = optuna.load_study(study_name=sorted(names)[0], storage=storage)
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        raise UserInputError(f"study {names[0]} has no trading-pipeline settings")
    return TuneSpec.from_json(stored)


def work(
    bars: pl.DataFrame,
    family: StrategyFamily,
    *,
    study_group: str,
    storage: BaseStorage,
    n_trials: int,
    seed: int | None = None,
    risk: RiskRules | None = None,
    batch: int = DEFAULT_BATCH,
    sampler: str = "tpe",
    ask: int | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> TuneRun:
    """Join an existing study group and add ``n_trials`` trials to each of its fold studies
    (``progress(done, total)`` as in :func:`tune`)."""
    if n_trials < 1:
        raise UserInputError("--trials must be >= 1")
    _quiet()
    spec = load_spec(study_group, storage)
    if spec.family != family.name or spec.family_version != family.version:
        raise UserInputError(
            f"study {study_group} tunes {spec.family} v{spec.family_version}, "
            f"not {family.name} v{family.version}"
        )
    if bars.height != spec.n_bars or fingerprint(bars) != spec.data_fingerprint:
        raise UserInputError(
            f"the data differ from the data study {study_group} was created with "
            f"({bars.height} bars vs {spec.n_bars})"
        )
    evaluator = evaluator_for(
        bars, family, interval=spec.interval, costs=spec.costs, risk=risk, cash=spec.cash
    )
    folds = spec.walk.split(bars.height)
    evaluator.warm_up(folds[0].train_start, folds[0].train_stop)
    runner = batch_runner(evaluator, spec.walk.segments, sampler, ask, seed, batch)
    t0 = time.perf_counter()
    advance = _counter(progress, n_trials * len(folds))
    for fold in folds:
        study = open_fold_study(
            spec, fold.index, storage, seed=seed, create=False, sampler_name=sampler
        )
        objective = make_objective(evaluator, fold, spec.walk.segments)
        run = runner(fold) if runner else None
        optimize_buffered(study, objective, n_trials, batch=batch, run=run, advance=advance)
    return TuneRun(study_group, n_trials * spec.walk.folds, time.perf_counter() - t0)
