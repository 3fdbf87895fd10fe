"""Batched tuning: the fused evaluation equals one-at-a-time evaluation for every family, and a
walk-forward tuned k trials at a time is identical to one tuned one trial at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest

from trading_pipeline.backtest.costs import RiskRules
from trading_pipeline.backtest.metrics import METRICS
from trading_pipeline.discovery.batch import (
    BatchEvaluator,
    make_sampler,
    run_direct,
    segment_bounds,
    tell_replayed,
)
from trading_pipeline.discovery.evaluate import Evaluator
from trading_pipeline.discovery.results import collect
from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune, work
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.registry import FAMILIES, get_family
from trading_pipeline_tests.fakes.bars import START_2021, make_bars


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars(3000, seed=41, trend="walk_traded", start=START_2021)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_batch_metrics_equal_one_at_a_time(bars: pl.DataFrame, name: str) -> None:
    fam = FAMILIES[name]
    ev = Evaluator(bars, fam, interval="1h", risk=RiskRules(trailing_stop=0.05))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=len(name)))
    params = [fam.suggest(study.ask()) for _ in range(12)]
    # a window near the start (contexts clipped at bar 0) and one far in (contexts inside)
    for lo, hi in ((40, 1200), (1500, 2700)):
        bounds = segment_bounds(lo, hi, 3)
        got = BatchEvaluator(ev).metrics(params, bounds)
        for k, p in enumerate(params):
            ref = ev.segments(p, bounds)
            for s, m in enumerate(ref):
                want = np.array([m[x] for x in METRICS])
                np.testing.assert_array_equal(got[k, s], want, err_msg=f"{p} segment {s}")


def _tune(bars: pl.DataFrame, tmp: Path, tag: str, **kw: object) -> list[list[tuple]]:
    fam = get_family(str(kw.pop("family", "sma_cross")))
    storage = open_storage(f"journal:{tmp / f'{tag}.log'}", data_dir=tmp)
    spec = make_spec(bars, fam, series="spot-RW-1h", interval="1h", walk=WalkForward(folds=3))
    tune(bars, fam, spec=spec, storage=storage, n_trials=40, seed=5, batch=25, **kw)  # type: ignore[arg-type]
    out = []
    for k in range(3):
        trials = optuna.load_study(study_name=spec.fold_study(k), storage=storage).trials
        out.append([(t.params, t.state, t.value, t.intermediate_values) for t in trials])
    res = collect(bars, fam, spec=spec, storage=storage)
    out.append([(f.params, f.train_value, f.test_metrics) for f in res.folds])
    return out


@pytest.mark.parametrize(
    ("family", "sampler", "ask"),
    [("sma_cross", "random", 16), ("rsi_reversion", "qmc", 7), ("macd", "tpe", 1)],
)
def test_batched_walk_forward_identical_to_one_at_a_time(
    bars: pl.DataFrame, tmp_path: Path, family: str, sampler: str, ask: int
) -> None:
    one = _tune(bars, tmp_path, "one", family=family, sampler=sampler, ask=0)
    batched = _tune(bars, tmp_path, "batched", family=family, sampler=sampler, ask=ask)
    assert repr(batched) == repr(one)  # repr: NaN metrics compare equal too
    states = [s for fold in one[:3] for (_, s, _, _) in fold]
    assert len(states) == 120 and optuna.trial.TrialState.PRUNED in states  # pruning replayed
    assert len({str(p) for fold in one[:3] for (p, _, _, _) in fold}) > 100  # no repeats


def test_unknown_sampler_is_a_user_error() -> None:
    with pytest.raises(UserInputError, match="unknown sampler"):
        make_sampler("grid", 0)


@pytest.mark.parametrize("family", ["sma_cross", "bollinger_reversion"])
def test_fast_random_batched_identical_to_one_at_a_time(
    bars: pl.DataFrame, tmp_path: Path, family: str
) -> None:
    one = _tune(bars, tmp_path, "one", family=family, sampler="fast-random", ask=0)
    batched = _tune(bars, tmp_path, "batched", family=family, sampler="fast-random", ask=32)
    assert repr(batched) == repr(one)
    states = [s for fold in one[:3] for (_, s, _, _) in fold]
    assert len(states) == 120 and optuna.trial.TrialState.PRUNED in states


def test_fast_random_prunes_as_optunas_median_pruner(bars: pl.DataFrame, tmp_path: Path) -> None:
    """The same parameter sets told through Optuna's own trials and MedianPruner end in the
    same states, values and intermediate values as the direct loop's replica."""
    fam = get_family("sma_cross")
    ev = Evaluator(bars, fam, interval="1h")
    bounds = segment_bounds(600, 2400, 3)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=10, n_warmup_steps=1)
    direct = optuna.create_study(direction="maximize", pruner=pruner)
    score = BatchEvaluator(ev).sharpes
    run_direct(direct, lambda sets: score(sets, bounds), fam.space, 9, 60, 16, 25)
    ref = optuna.create_study(direction="maximize", pruner=pruner)
    for t in direct.trials:
        ref.enqueue_trial(t.params)
        trial = ref.ask()
        p = fam.suggest(trial)
        tell_replayed(ref, trial, score([p], bounds)[0])
    got = [(t.params, t.state, t.value, t.intermediate_values) for t in direct.trials]
    want = [(t.params, t.state, t.value, t.intermediate_values) for t in ref.trials]
    assert got == want
    assert optuna.trial.TrialState.PRUNED in {t.state for t in ref.trials}


@pytest.mark.parametrize(("sampler", "ask"), [("fast-random", 32), ("random", 16)])
def test_journal_batches_equal_memory_and_resume(
    bars: pl.DataFrame, tmp_path: Path, sampler: str, ask: int
) -> None:
    """On the journal file (trials written a batch per append) the walk-forward equals the same
    run on an in-memory storage and the one-at-a-time run; fast-random (whose sets depend on the
    seed and the trial number only) also equals a run stopped half-way and resumed by a new
    storage object, as a new process would."""
    fam = get_family("sma_cross")
    spec = make_spec(bars, fam, series="spot-RW-1h", interval="1h", walk=WalkForward(folds=3))
    kw = {"seed": 5, "batch": 25, "sampler": sampler}

    def view(storage: optuna.storages.BaseStorage) -> list[list[tuple]]:
        out = []
        for k in range(3):
            trials = optuna.load_study(study_name=spec.fold_study(k), storage=storage).trials
            out.append(
                [(t.number, t.params, t.state, t.value, t.intermediate_values) for t in trials]
            )
        res = collect(bars, fam, spec=spec, storage=storage)
        out.append([(f.params, f.train_value, f.test_metrics) for f in res.folds])
        return out

    memory = optuna.storages.InMemoryStorage()
    tune(bars, fam, spec=spec, storage=memory, n_trials=40, ask=ask, **kw)  # type: ignore[arg-type]
    one_url = f"journal:{tmp_path / 'one.log'}"
    tune(
        bars,
        fam,
        spec=spec,
        storage=open_storage(one_url, data_dir=tmp_path),
        n_trials=40,
        ask=0,
        **kw,
    )  # type: ignore[arg-type]
    url = f"journal:{tmp_path / 'batched.log'}"
    tune(
        bars,
        fam,
        spec=spec,
        storage=open_storage(url, data_dir=tmp_path),
        n_trials=40,
        ask=ask,
        **kw,
    )  # type: ignore[arg-type]
    want = repr(view(memory))
    assert repr(view(open_storage(url, data_dir=tmp_path))) == want
    assert repr(view(open_storage(one_url, data_dir=tmp_path))) == want
    if sampler == "fast-random":
        resumed = f"journal:{tmp_path / 'resumed.log'}"
        for n in (17, 40):
            storage = open_storage(resumed, data_dir=tmp_path)
            tune(bars, fam, spec=spec, storage=storage, n_trials=n, ask=ask, **kw)  # type: ignore[arg-type]
        assert repr(view(open_storage(resumed, data_dir=tmp_path))) == want


def _worker(url: str, data_dir: str, group: str, n: int) -> None:
    """A tune-worker process: fast-random, 16 per fused call, its own (random) seed."""
    bars = make_bars(3000, seed=41, trend="walk_traded", start=START_2021)
    storage = open_storage(url, data_dir=data_dir, create=False)
    work(
        bars,
        get_family("sma_cross"),
        study_group=group,
        storage=storage,
        n_trials=n,
        sampler="fast-random",
        ask=16,
        batch=20,
    )


@pytest.mark.slow  # two worker processes
def test_two_worker_processes_share_one_journal(bars: pl.DataFrame, tmp_path: Path) -> None:
    """Two processes adding batches of trials to the same journal studies at once: every trial
    of both lands once, numbered 0..n-1, and the workers drew different sets."""
    import multiprocessing

    fam = get_family("sma_cross")
    url = f"journal:{tmp_path / 'shared.log'}"
    spec = make_spec(bars, fam, series="spot-RW-1h", interval="1h", walk=WalkForward(folds=2))
    tune(bars, fam, spec=spec, storage=open_storage(url, data_dir=tmp_path), n_trials=10, seed=1)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(url, str(tmp_path), spec.study_group, 100))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    storage = open_storage(url, data_dir=tmp_path)
    for k in range(2):
        trials = optuna.load_study(study_name=spec.fold_study(k), storage=storage).trials
        assert [t.number for t in trials] == list(range(210))
        assert all(t.state.is_finished() for t in trials)
        added = [str(sorted(t.params.items())) for t in trials[10:]]
        assert len(set(added)) > 150  # two seeds: not the same 100 sets twice
