"""Studies on Optuna's journal on Redis (``redis://``), the scale-out storage for workers."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import optuna
import pytest

from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import WalkForward, make_spec, tune, work
from trading_pipeline.errors import EnvironmentFault
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.fakes.bars import START_2021, make_bars

pytestmark = pytest.mark.slow  # Optuna studies

URL = "redis://127.0.0.1:6379/15"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_tune_and_a_worker_share_a_study_on_redis(tmp_path: Path) -> None:
    sma = get_family("sma_cross")
    bars = make_bars(1500, seed=3, trend="walk_traded", start=START_2021)
    series = f"spot-RW{uuid.uuid4().hex[:6]}-1h"  # a fresh study group on the shared server
    spec = make_spec(bars, sma, series=series, interval="1h", walk=WalkForward(folds=2))
    tune(bars, sma, spec=spec, storage=open_storage(URL, data_dir=tmp_path), n_trials=4)
    other = open_storage(URL, data_dir=tmp_path)  # another process would open its own
    work(bars, sma, study_group=spec.study_group, storage=other, n_trials=3, batch=2)
    study = optuna.load_study(study_name=spec.fold_study(1), storage=other)
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in trials] == list(range(7))  # numbered once each, in order
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def test_an_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentFault, match=r"cannot open study storage redis://127.0.0.1:1/0"):
        open_storage("redis://127.0.0.1:1/0", data_dir=tmp_path)
