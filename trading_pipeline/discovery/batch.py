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

import itertools
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from trading_pipeline.backtest.engine import make_cfg, series_of
from trading_pipeline.backtest.fused import build_plan, cfgs_for, run_plan, same_rule
from trading_pipeline.backtest.metrics import METRICS
from trading_pipeline.discovery.evaluate import Evaluator
from trading_pipeline.errors import UserInputError

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "qmc")
DEFAULT_ASK = 64
SHARPE = METRICS.index("sharpe")


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The sampler called ``name`` (``tpe``, ``random`` or ``qmc``: scrambled Sobol), seeded."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        with warnings.catch_warnings():  # "experimental" since Optuna 3.0
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(
                seed=seed, scramble=True, warn_independent_sampling=False
            )
    raise UserInputError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")


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
