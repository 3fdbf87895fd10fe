"""New months of history: the study group is tuned again on the grown data, seeded with the
best parameters found before (re-scored, never reused), the old studies kept aside and still
counted when the series' search is deflated."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from trading_pipeline.discovery.catalog import StudyCatalog
from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import (
    SUPERSEDED,
    WalkForward,
    make_spec,
    open_fold_study,
    supersede,
    tune,
)
from trading_pipeline.settings import DataLayout
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import make_bars

pytestmark = pytest.mark.slow  # two tunings into a journal file

SERIES = "spot-SYNUSDT-1h"


def test_grown_data_retunes_the_group_warm_started_and_keeps_the_old_aside(
    tmp_path: Path,
) -> None:
    storage = open_storage(f"journal:{tmp_path / 'studies.log'}", data_dir=tmp_path)
    family = get_family("sma_cross")
    bars = make_bars(2160, seed=3)
    walk = WalkForward(folds=2)
    old_spec = make_spec(bars.head(1440), family, series=SERIES, interval="1h", walk=walk)
    tune(bars.head(1440), family, spec=old_spec, storage=storage, n_trials=12, seed=0)
    old = {
        k: optuna.load_study(study_name=old_spec.fold_study(k), storage=storage) for k in range(2)
    }
    best_before = {k: s.best_params for k, s in old.items()}
    trials_before = {k: len(s.trials) for k, s in old.items()}

    new_spec = make_spec(bars, family, series=SERIES, interval="1h", walk=walk)
    assert new_spec.study_group == old_spec.study_group  # same family, code and series
    run = tune(bars, family, spec=new_spec, storage=storage, n_trials=12, seed=0)
    assert run.trials_run == 24
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    tag = old_spec.data_fingerprint[:8]
    for k in range(2):
        fresh = open_fold_study(new_spec, k, storage, seed=0, create=False)
        # the first trial re-scores the best parameters found on the old data
        assert fresh.trials[0].params == best_before[k]
        assert fresh.trials[0].value is not None and len(fresh.trials) == 12
        kept = f"{SUPERSEDED}-{tag}-{old_spec.fold_study(k)}"
        assert kept in names
        assert len(optuna.load_study(study_name=kept, storage=storage).trials) == trials_before[k]
    catalog = StudyCatalog(DataLayout.under(tmp_path), storage)
    assert catalog.groups() == [new_spec.study_group]  # the superseded ones are not candidates
    assert catalog.trials_by_series()[SERIES] == 24 + sum(trials_before.values())
    # tuning again on the same data resumes the same studies: nothing is superseded
    assert supersede(new_spec, storage) == {}
    tune(bars, family, spec=new_spec, storage=storage, n_trials=14, seed=0)
    again = open_fold_study(new_spec, 0, storage, seed=0, create=False)
    assert len(again.trials) == 14 and again.trials[0].params == best_before[0]
