"""Walk-forward tuning: honest on noise, blind to its test windows, seeded, resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest

from trading_pipeline.discovery.results import collect
from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import (
    SUPERSEDED,
    WalkForward,
    load_spec,
    make_spec,
    optimize_buffered,
    tune,
    work,
)
from trading_pipeline.errors import UserInputError
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import START_2021, make_bars

pytestmark = pytest.mark.slow  # Optuna walk-forward studies of thousands of bars

SMA = get_family("sma_cross")


def _spec(bars: pl.DataFrame, folds: int = 3, series: str = "spot-RW-1h"):
    return make_spec(bars, SMA, series=series, interval="1h", walk=WalkForward(folds=folds))


def _trials(storage, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def test_random_walk_best_strategy_is_not_significant(tmp_path: Path) -> None:
    bars = make_bars(6000, seed=11, trend="walk_traded", start=START_2021)
    storage = open_storage(None, data_dir=tmp_path)
    spec = _spec(bars)
    run = tune(bars, SMA, spec=spec, storage=storage, n_trials=60, seed=3)
    assert run.trials_run == 180
    res = collect(bars, SMA, spec=spec, storage=storage)
    # the search did find in-sample "winners" on pure noise ...
    assert max(f.train_value for f in res.folds) > 0.5
    # ... but out of sample, deflated for 180 trials, the winner is not significant
    assert res.n_trials == 180
    assert res.dsr.n_trials == 180
    assert not res.dsr.significant()
    assert res.dsr.probability < 0.95
    assert res.metrics["bars"] == sum(f.test[1] - f.test[0] for f in res.folds)
    assert res.pbo is not None and 0.0 <= res.pbo.pbo <= 1.0


def test_no_test_window_bar_influences_its_parameters(tmp_path: Path) -> None:
    bars = make_bars(4000, seed=5, trend="walk_traded", start=START_2021)
    spec = _spec(bars)
    folds = spec.walk.split(bars.height)
    cut = folds[1].test_start  # rewrite every bar from fold 1's test window on
    rng = np.random.default_rng(0)
    noise = np.ones(bars.height)
    noise[cut:] = np.exp(np.cumsum(0.02 * rng.standard_normal(bars.height - cut)))
    changed = bars.with_columns(
        [(pl.col(c) * pl.Series(noise)).alias(c) for c in ("open", "high", "low", "close")]
    )
    chosen = []
    for i, b in enumerate((bars, changed)):
        storage = open_storage(f"journal:{tmp_path / f's{i}.log'}", data_dir=tmp_path)
        sp = _spec(b)
        tune(b, SMA, spec=sp, storage=storage, n_trials=20, seed=1)
        chosen.append(collect(b, SMA, spec=sp, storage=storage))
    a, b = chosen
    # folds 0 and 1 were tuned on bars before the change: same parameters
    assert a.folds[0].params == b.folds[0].params
    assert a.folds[1].params == b.folds[1].params
    assert a.folds[1].train_value == b.folds[1].train_value
    # while their test windows (and so the reported OOS) did change
    assert a.folds[1].test_metrics != b.folds[1].test_metrics


def test_same_seed_same_parameters(tmp_path: Path) -> None:
    bars = make_bars(3000, seed=2, trend="walk_traded", start=START_2021)
    picks = []
    for i, seed in enumerate((7, 7, 8)):
        storage = open_storage(f"journal:{tmp_path / f'r{i}.log'}", data_dir=tmp_path)
        spec = _spec(bars, folds=2)
        tune(bars, SMA, spec=spec, storage=storage, n_trials=15, seed=seed)
        res = collect(bars, SMA, spec=spec, storage=storage)
        trials = _trials(storage, spec.fold_study(0))
        picks.append(([f.params for f in res.folds], [t.params for t in trials]))
    assert picks[0] == picks[1]
    assert picks[0][1] != picks[2][1]  # another seed samples other parameters


def test_study_resumes_from_its_storage(tmp_path: Path) -> None:
    bars = make_bars(3000, seed=4, trend="walk_traded", start=START_2021)
    url = f"journal:{tmp_path / 'studies.log'}"
    spec = _spec(bars, folds=2)
    first = tune(bars, SMA, spec=spec, storage=open_storage(url, data_dir=tmp_path), n_trials=8)
    assert first.trials_run == 16
    before = [t.params for t in _trials(open_storage(url, data_dir=tmp_path), spec.fold_study(1))]
    # a new process (new storage object) with the same command does nothing more ...
    again = tune(bars, SMA, spec=spec, storage=open_storage(url, data_dir=tmp_path), n_trials=8)
    assert again.trials_run == 0
    # ... and asking for 2n continues to 2n, keeping the first n trials
    more = tune(bars, SMA, spec=spec, storage=open_storage(url, data_dir=tmp_path), n_trials=16)
    assert more.trials_run == 16
    after = _trials(open_storage(url, data_dir=tmp_path), spec.fold_study(1))
    assert len(after) == 16
    assert [t.number for t in after] == list(range(16))
    assert [t.params for t in after[:8]] == before


def test_pruner_stops_trials_across_train_segments(tmp_path: Path) -> None:
    bars = make_bars(3000, seed=9, trend="walk_traded", start=START_2021)
    storage = open_storage(None, data_dir=tmp_path)
    spec = _spec(bars, folds=2)
    tune(bars, SMA, spec=spec, storage=storage, n_trials=40, seed=0)
    trials = _trials(storage, spec.fold_study(0))
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned, "the median pruner never stopped a trial"
    assert all(len(t.intermediate_values) == spec.walk.segments for t in complete)
    assert all(len(t.intermediate_values) < spec.walk.segments for t in pruned)
    res = collect(bars, SMA, spec=spec, storage=storage)
    assert res.n_trials == 80  # pruned trials count as trials tried


def test_worker_joins_and_refuses_other_data(tmp_path: Path) -> None:
    bars = make_bars(3000, seed=4, trend="walk_traded", start=START_2021)
    storage = open_storage(None, data_dir=tmp_path)
    spec = _spec(bars, folds=2)
    tune(bars, SMA, spec=spec, storage=storage, n_trials=5)
    run = work(bars, SMA, study_group=spec.study_group, storage=storage, n_trials=3, seed=1)
    assert run.trials_run == 6
    assert len(_trials(storage, spec.fold_study(0))) == 8
    other = make_bars(3000, seed=5, trend="walk_traded", start=START_2021)
    with pytest.raises(UserInputError, match="data differ"):
        work(other, SMA, study_group=spec.study_group, storage=storage, n_trials=1)
    with pytest.raises(UserInputError, match="no study"):
        work(bars, SMA, study_group="nope-v1-x", storage=storage, n_trials=1)
    # the same group with other settings is never mixed: a new study replaces it (seeded with
    # its best parameters, re-scored) and the old one is kept aside, not resumed
    embargoed = make_spec(
        bars, SMA, series="spot-RW-1h", interval="1h", walk=WalkForward(folds=2, embargo=5)
    )
    assert embargoed.study_group == spec.study_group
    tune(bars, SMA, spec=embargoed, storage=storage, n_trials=4)
    assert load_spec(spec.study_group, storage) == embargoed
    assert len(_trials(storage, spec.fold_study(0))) == 4
    kept = f"{SUPERSEDED}-{spec.data_fingerprint[:8]}-{spec.fold_study(0)}"
    assert len(_trials(storage, kept)) == 8


def test_interrupted_batch_keeps_its_finished_trials(tmp_path: Path) -> None:
    storage = open_storage(None, data_dir=tmp_path)
    study = optuna.create_study(
        study_name="x", storage=storage, sampler=optuna.samplers.TPESampler(seed=0)
    )

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 5:
            raise KeyboardInterrupt
        return trial.suggest_float("x", 0.0, 1.0)

    with pytest.raises(KeyboardInterrupt):
        optimize_buffered(study, objective, 20, batch=50)
    kept = optuna.load_study(study_name="x", storage=storage).get_trials(deepcopy=False)
    assert [t.number for t in kept] == [0, 1, 2, 3, 4]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in kept)


STRATEGY = """
from trading_pipeline.strategies.base import Param, SearchSpace, Signals, StrategyFamily
import numpy as np


class Flip(StrategyFamily):
    name = "flip_cross"
    version = 1
    space = SearchSpace((Param("fast", "int", 5, low=3, high=20),
                         Param("slow", "int", 30, low=21, high=60)))

    def signals(self, bars, params):
        c = bars["close"].to_numpy()
        f = bars["close"].rolling_mean(int(params["fast"])).to_numpy()
        s = bars["close"].rolling_mean(int(params["slow"])).to_numpy()
        up = np.nan_to_num(f > s)
        return Signals.from_positions(SIGN * up)
"""


def test_a_changed_strategy_starts_a_new_study_not_the_old_trials(tmp_path: Path) -> None:
    """The signal is inverted without bumping ``version``: the code fingerprint is part of the
    study's name, so tuning starts a fresh study; the old trials stay where they were."""
    from trading_pipeline.strategies.registry import load_strategy_file

    bars = make_bars(1500, seed=4, trend="walk_traded", start=START_2021)
    storage = open_storage(None, data_dir=tmp_path)
    path = tmp_path / "flip.py"
    names = []
    for sign in ("1", "-1"):
        path.write_text(STRATEGY.replace("SIGN", sign))
        fam = load_strategy_file(path)["flip_cross"]
        spec = make_spec(bars, fam, series="spot-RW-1h", interval="1h", walk=WalkForward(folds=2))
        tune(bars, fam, spec=spec, storage=storage, n_trials=4, seed=1)
        names.append(spec.study_group)
        assert len(_trials(storage, spec.fold_study(0))) == 4  # fresh trials, not the old ones
    assert names[0] != names[1] and all(n.startswith("flip_cross-v1-spot-RW-1h-c") for n in names)
