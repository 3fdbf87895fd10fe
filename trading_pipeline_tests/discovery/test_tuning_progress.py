"""Tuning reports its progress, and a worker among others keeps its in-memory copy in step."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import WalkForward, make_spec, optimize_buffered, tune, work
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import START_2021, make_bars

pytestmark = pytest.mark.slow  # Optuna walk-forward studies

SMA = get_family("sma_cross")


def test_tune_and_work_report_every_trial_up_to_the_total(tmp_path: Path) -> None:
    bars = make_bars(1500, seed=3, trend="walk_traded", start=START_2021)
    spec = make_spec(bars, SMA, series="spot-RW-1h", interval="1h", walk=WalkForward(folds=3))
    storage = open_storage(None, data_dir=tmp_path)
    calls: list[tuple[float, float]] = []
    tune(bars, SMA, spec=spec, storage=storage, n_trials=6, batch=4, progress=lambda d, t: calls.append((d, t)))  # fmt: skip
    assert calls[0] == (0, 18) and calls[-1] == (18, 18)  # 6 trials × 3 folds
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(set(done)) > 3  # it advances batch by batch
    # topping up to 10 a fold: only the 4 × 3 trials still to run are counted
    calls.clear()
    tune(bars, SMA, spec=spec, storage=storage, n_trials=10, batch=4, progress=lambda d, t: calls.append((d, t)))  # fmt: skip
    assert calls[0] == (0, 12) and calls[-1] == (12, 12)
    calls.clear()
    work(bars, SMA, study_group=spec.study_group, storage=storage, n_trials=2, progress=lambda d, t: calls.append((d, t)))  # fmt: skip
    assert calls[0] == (0, 6) and calls[-1] == (6, 6)


def test_a_worker_among_others_adds_only_their_new_trials_to_its_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two studies on one journal stand for two workers: after each of one worker's batches
    the other writes two trials; every trial ends up once in the storage, each batch's sampler
    saw every trial stored before it started, and the copy is topped up, not rebuilt."""
    storage = open_storage(None, data_dir=tmp_path)
    a = optuna.create_study(study_name="s", storage=storage, sampler=optuna.samplers.RandomSampler(seed=1))  # fmt: skip
    b = optuna.load_study(study_name="s", storage=open_storage(None, data_dir=tmp_path), sampler=optuna.samplers.RandomSampler(seed=2))  # fmt: skip
    copies = []
    create = optuna.create_study
    monkeypatch.setattr(optuna, "create_study", lambda **kw: copies.append(kw) or create(**kw))
    seen: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        seen.append(len(trial.study.get_trials(deepcopy=False)) - 1)  # trials before this one
        x = trial.suggest_float("x", 0.0, 1.0)
        if len(seen) % 3 == 0:  # the batch's last trial: meanwhile the other writes two
            optimize_buffered(b, lambda t: t.suggest_float("x", 0, 1), 2, batch=2)
        return x

    optimize_buffered(a, objective, 9, batch=3)
    stored = a.get_trials(deepcopy=False)
    assert len(stored) == 9 + 2 * 3
    assert len({(t.datetime_start, t.params["x"]) for t in stored}) == len(stored)  # no twice
    # batch k starts from its own 3k trials plus the 2k the other worker wrote
    assert [seen[3 * k] for k in range(3)] == [0, 5, 10]
    assert len(copies) == 1 + 3  # one copy for a (topped up since), one per call of b
