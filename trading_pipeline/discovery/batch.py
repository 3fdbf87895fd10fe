"""Batched tuning: ask k trials, evaluate them in one fused call, tell the results.

:class:`BatchEvaluator` scores many parameter sets of one family on the segments of a train
window in one compiled call (:mod:`trading_pipeline.backtest.fused`): each set's lines are
computed on the same bars ``[ctx, stop)`` as :meth:`.evaluate.Evaluator.segments` hands to
``signals()``, so its metrics equal the one-at-a-time path bit for bit.

:func:`optimize_batched` replaces Optuna's ``optimize`` loop by ask/tell: it asks ``ask``
trials, evaluates them together, then replays each trial's intermediate reports, pruning
decisions and ``tell`` in order. The pruner sees exactly the trials it would have seen one at a
time (it only reads finished trials), and a sampler that does not learn from results (random,
QMC) draws the same parameters, so the study is identical to one-at-a-time evaluation for the
same seed. TPE learns from every result: asked ``k`` at a time it draws other (less informed)
points, so with TPE ``ask`` defaults to 1 (still fused, still identical).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import secrets
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from trading_pipeline.backtest.engine import make_cfg, series_of
from trading_pipeline.backtest.fused import build_plan, cfgs_for, run_plan, same_rule
from trading_pipeline.backtest.metrics import METRICS
from trading_pipeline.discovery.evaluate import Evaluator
from trading_pipeline.discovery.storage import add_trials
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.base import SearchSpace

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "qmc", "fast-random")
DEFAULT_ASK = 64
SHARPE = METRICS.index("sharpe")


def check_sampler(name: str, ask: int | None = None) -> str:
    """``name`` when it is a known sampler and ``ask`` (trials per fused call) is ``None`` (the
    sampler's default) or ≥ 0, else the one-line user error (checked before any work)."""
    if name not in SAMPLERS:
        raise UserInputError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    if ask is not None and ask < 0:
        raise UserInputError(f"--batch must be >= 0 (0: one trial at a time), got {ask}")
    return name


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The sampler called ``name`` (``tpe``, ``random`` or ``qmc``: scrambled Sobol), seeded."""
    import optuna

    check_sampler(name)

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name in ("random", "fast-random"):  # fast-random draws its own sets (see draw)
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        with warnings.catch_warnings():  # "experimental" since Optuna 3.0
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(
                seed=seed, scramble=True, warn_independent_sampling=False
            )
    raise AssertionError(name)  # check_sampler knows every name


def default_ask(sampler: str) -> int:
    """Trials asked per fused call: 1 for TPE (it learns from every result), else 64."""
    return 1 if sampler == "tpe" else DEFAULT_ASK


class BatchEvaluator:
    """Scores many parameter sets of the evaluator's family in one fused call."""

    def __init__(self, evaluator: Evaluator) -> None:
        ev = evaluator
        self.evaluator = ev
        self.series = series_of(ev.bars, ev.prices)
        self.cfg = make_cfg(cash=ev.cash, costs=ev.costs, risk=ev.risk, interval=ev.interval)
        self.local: dict[tuple[int, int], np.ndarray] = {}  # window-local lines, whole series

    @property
    def fused(self) -> bool:
        """Whether the family has a compiled form (else every set goes through ``signals()``)."""
        return self.evaluator.family.compiled(self.evaluator.family.default_params()) is not None

    def metrics(
        self, params: Sequence[Mapping[str, Any]], bounds: Sequence[tuple[int, int]]
    ) -> np.ndarray:
        """Metrics ``(sets, segments, METRICS)``, equal to ``Evaluator.segments`` per set."""
        ev = self.evaluator
        forms = [ev.family.compiled(p) for p in params]
        if not same_rule(forms):
            rows = [ev.segments(p, bounds) for p in params]
            return np.array([[[m[name] for name in METRICS] for m in r] for r in rows])
        ok = [f for f in forms if f is not None]
        start = min(b[0] for b in bounds)
        stop = max(b[1] for b in bounds)
        ctxs = [max(0, start - ev.context_bars(p)) for p in params]
        rs = ev.risk
        cfgs = cfgs_for(ok, self.cfg, rs.stop_loss, rs.take_profit)
        plan = build_plan(self.series, ok, ctxs, stop, cfgs, local_cache=self.local)
        return run_plan(self.series, plan, bounds)

    def sharpes(
        self, params: Sequence[Mapping[str, Any]], bounds: Sequence[tuple[int, int]]
    ) -> np.ndarray:
        """Annualised Sharpe ratio of every set on every segment ``(sets, segments)``."""
        return self.metrics(params, bounds)[:, :, SHARPE]


def tell_replayed(study: optuna.Study, trial: optuna.Trial, sharpes: Sequence[float]) -> None:
    """Report, prune and tell ``trial`` exactly as the one-at-a-time objective would: the
    running mean Sharpe after each segment, a pruning check after every segment but the last,
    and the mean over all segments as the value."""
    import optuna
    from optuna.study._tell import _tell_with_warning  # Optuna's own loop's tell: no deep copy

    values = [float(s) for s in sharpes]
    for j in range(len(values)):
        trial.report(float(np.mean(values[: j + 1])), j)
        if j < len(values) - 1 and trial.should_prune():
            _tell_with_warning(study, trial, None, optuna.trial.TrialState.PRUNED)
            return
    _tell_with_warning(study, trial, float(np.mean(values)), optuna.trial.TrialState.COMPLETE)


def run_asked(
    study: optuna.Study,
    batch_eval: BatchEvaluator,
    bounds: Sequence[tuple[int, int]],
    n_trials: int,
    ask: int,
) -> None:
    """Run ``n_trials`` trials on ``study`` by ask/tell, ``ask`` at a time in one fused call
    (the very first trial of a study alone)."""
    import optuna

    family = batch_eval.evaluator.family
    complete = (optuna.trial.TrialState.COMPLETE,)
    left = n_trials
    while left > 0:
        # QMC fixes its search space from the first complete trial: until one exists, one at a
        # time (as Optuna's own loop would see it)
        first = not study.get_trials(deepcopy=False, states=complete)
        k = 1 if first else min(ask, left)
        trials = [study.ask() for _ in range(k)]
        params = [family.suggest(t) for t in trials]
        scores = batch_eval.sharpes(params, bounds)
        for t, row in zip(trials, scores, strict=True):
            tell_replayed(study, t, row)
        left -= k


def segment_bounds(train_start: int, train_stop: int, segments: int) -> list[tuple[int, int]]:
    """The ``segments`` consecutive pieces of a train window the objective scores."""
    edges = np.linspace(train_start, train_stop, segments + 1).astype(int).tolist()
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def draw(space: SearchSpace, seed: int, number: int) -> dict[str, Any]:
    """Trial ``number``'s parameters for the ``fast-random`` sampler: uniform over each tuned
    parameter's stepped values (the upper one of ``a < b`` above ``a``, as
    :meth:`SearchSpace.suggest` samples), from a generator seeded by ``(seed, number)`` only,
    so a trial's parameters do not depend on batch sizes or on resuming."""
    rng = random.Random(f"{seed}:{number}")
    out: dict[str, Any] = space.defaults()
    for p in space.params:
        if not p.tune:
            continue
        if p.kind == "choice":
            out[p.name] = p.choices[rng.randrange(len(p.choices))]
            continue
        assert p.low is not None and p.high is not None
        step = p.step or 1.0
        low = p.low
        for c in space.constraints:
            if c.b == p.name:
                floor = float(out[c.a]) + step
                if floor > low:
                    low = low + math.ceil((floor - low) / step - 1e-9) * step
        if p.kind == "float" and p.step is None:
            out[p.name] = rng.uniform(low, p.high)
            continue
        count = math.floor((p.high - low) / step + 1e-9) + 1
        v = low + rng.randrange(count) * step
        out[p.name] = round(v) if p.kind == "int" else round(v, 12)
    return space.validate(out)


def distributions(space: SearchSpace, params: Mapping[str, Any]) -> dict[str, Any]:
    """The Optuna distributions of a drawn set (the dynamic lower bounds included)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for p in space.params:
        if not p.tune:
            continue
        if p.kind == "choice":
            out[p.name] = CategoricalDistribution(list(p.choices))
            continue
        assert p.low is not None and p.high is not None
        low = p.low
        for c in space.constraints:
            if c.b == p.name:
                step = p.step or 1.0
                floor = float(params[c.a]) + step
                if floor > low:
                    low = p.low + math.ceil((floor - p.low) / step - 1e-9) * step
        if p.kind == "int":
            out[p.name] = IntDistribution(int(low), int(p.high), step=int(p.step or 1))
        else:
            out[p.name] = FloatDistribution(low, p.high, step=p.step)
    return out


class MedianReplica:
    """Optuna's :class:`~optuna.pruners.PercentilePruner` decisions (``MedianPruner`` is the 50th
    percentile; interval 1), computed from the finished trials' intermediate values without a
    trial object, for a maximised study. ``prunes(running)`` answers as ``should_prune`` would
    after each report; ``add`` registers a finished trial."""

    def __init__(self, pruner: Any, trials: Sequence[Any]) -> None:
        self.pct = 100.0 - float(pruner._percentile)
        self.startup = int(pruner._n_startup_trials)
        self.warmup = int(pruner._n_warmup_steps)
        self.min_trials = int(pruner._n_min_trials)
        self.steps: dict[int, list[float]] = {}  # sorted
        self.nan = False
        self.n = 0
        for t in trials:
            if t.state.name == "COMPLETE":
                self.add(dict(t.intermediate_values))

    @staticmethod
    def supports(pruner: Any) -> bool:
        import optuna

        return (
            isinstance(pruner, optuna.pruners.PercentilePruner) and int(pruner._interval_steps) == 1
        )

    def add(self, values: Mapping[int, float]) -> None:
        self.n += 1
        for step, v in values.items():
            self.nan = self.nan or math.isnan(v)
            bisect.insort(self.steps.setdefault(step, []), v)

    def prunes(self, running: Sequence[float]) -> bool:
        step = len(running) - 1
        if self.n == 0 or self.n < self.startup or step < self.warmup:
            return False
        finite = [x for x in running if not math.isnan(x)]
        if not finite:
            return True
        best = max(finite)
        vals = self.steps.get(step, [])
        if len(vals) < self.min_trials:
            return False
        return best < self.percentile(vals)

    def percentile(self, vals: list[float]) -> float:
        """``np.nanpercentile(vals, pct)``; the median straight from the sorted list, with
        NumPy's interpolation arithmetic (``b - (b - a) * 0.5`` between two middles)."""
        n = len(vals)
        if self.pct != 50.0 or self.nan:
            return float(np.nanpercentile(np.array(vals, dtype=float), self.pct))
        if n % 2:
            return vals[n // 2]
        a, b = vals[n // 2 - 1], vals[n // 2]
        return b - (b - a) * 0.5


def run_direct(
    study: optuna.Study,
    score: Callable[[list[dict[str, Any]]], np.ndarray],
    space: SearchSpace,
    seed: int,
    n_trials: int,
    ask: int,
    write: int,
) -> int:
    """The ``fast-random`` loop: draw ``ask`` sets (:func:`draw`), score them in one call
    (``score(sets) -> (sets, segments)`` Sharpe ratios), decide pruning as the study's pruner
    would one trial at a time (:class:`MedianReplica`), and append the finished trials to the
    storage ``write`` at a time: no Optuna trial object, sampler or deep copy per trial."""
    from optuna.trial import TrialState, create_trial

    existing = study.get_trials(deepcopy=False)
    replica = MedianReplica(study.pruner, existing)
    number = len(existing)
    pending: list[optuna.trial.FrozenTrial] = []
    left = n_trials
    while left > 0:
        k = min(ask, left)
        sets = [draw(space, seed, number + i) for i in range(k)]
        scores = score(sets)
        for params, row in zip(sets, scores, strict=True):
            values = [float(s) for s in row]
            running: list[float] = []
            inter: dict[int, float] = {}
            state = TrialState.COMPLETE
            for j in range(len(values)):
                running.append(float(np.mean(values[: j + 1])))
                inter[j] = running[-1]
                if j < len(values) - 1 and replica.prunes(running):
                    state = TrialState.PRUNED
                    break
            value = float(np.mean(values)) if state == TrialState.COMPLETE else running[-1]
            if state == TrialState.COMPLETE:
                replica.add(inter)
            dists = distributions(space, params)
            pending.append(
                create_trial(
                    state=state,
                    value=value,
                    params={name: params[name] for name in dists},
                    distributions=dists,
                    intermediate_values=inter,
                )
            )
        number += k
        left -= k
        if len(pending) >= write or left == 0:
            add_trials(study, pending)  # one journal append per write
            pending = []
    return n_trials


def direct_runner(
    batch_eval: BatchEvaluator,
    bounds: Sequence[tuple[int, int]],
    ask: int,
    seed: int | None,
    fold: int,
    write: int,
) -> Callable[[optuna.Study, int], None]:
    """Fold ``fold``'s ``fast-random`` loop (:func:`run_direct`): ``ask`` sets per fused call,
    or with ``ask == 0`` one set at a time through ``signals()`` (the reference). Sets are
    drawn from ``(seed + fold, trial number)``; without a seed, from a random one."""
    ev = batch_eval.evaluator
    # no seed (a tune-worker's default): a fresh one, so two workers draw different sets
    base_seed = (secrets.randbits(31) if seed is None else seed) + fold

    def one_at_a_time(sets: list[dict[str, Any]]) -> np.ndarray:
        return np.array([[m["sharpe"] for m in ev.segments(p, bounds)] for p in sets])

    def fused(sets: list[dict[str, Any]]) -> np.ndarray:
        return batch_eval.sharpes(sets, bounds)

    score = fused if ask > 0 and batch_eval.fused else one_at_a_time
    per_call = ask if score is fused else 1

    def run(study: optuna.Study, n: int) -> None:
        if not MedianReplica.supports(study.pruner):
            raise UserInputError("the fast-random sampler needs a median/percentile pruner")
        run_direct(study, score, ev.family.space, base_seed, n, per_call, write)

    run.direct = True  # type: ignore[attr-defined]
    return run
