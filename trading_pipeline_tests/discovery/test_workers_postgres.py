"""Two `tune-worker` processes share one study on the local PostgreSQL (skipped without it)."""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path

import optuna
import pytest

from trading_pipeline.discovery.storage import open_storage
from trading_pipeline.discovery.tuning import code_fingerprint, work
from trading_pipeline.strategies.registry import get_family
from trading_pipeline_tests.discovery.helpers import cli_main, cli_process
from trading_pipeline_tests.fakes.bars import START_2021, make_bars

pytestmark = pytest.mark.slow  # subprocesses

PER_WORKER = 15
FOLDS = 2


def _worker(url: str, study: str, data: Path, tmp: Path) -> object:
    argv = ["tune-worker", "--study", study, "--storage", url, "--data", str(data)]
    argv += ["--trials", str(PER_WORKER), "--data-dir", str(tmp), "--json"]
    return cli_process(argv)


def _finish(proc) -> dict:  # type: ignore[no-untyped-def]
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_two_workers_share_a_postgres_study(
    postgres_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: pytest.RecordProperty,
) -> None:
    tag = uuid.uuid4().hex[:8]
    data = tmp_path / f"pg_{tag}.parquet"
    bars = make_bars(3000, seed=8, trend="walk_traded", start=START_2021)
    bars.write_parquet(data)
    study = f"sma_cross-v1-file-pg_{tag}-1h-c{code_fingerprint(get_family('sma_cross'))[:8]}"
    storage = open_storage(postgres_url, data_dir=tmp_path)
    try:
        argv = ["tune", "--strategy", "sma_cross", "--data", str(data), "--storage", postgres_url]
        argv += ["--folds", str(FOLDS), "--trials", "0", "--data-dir", str(tmp_path)]
        assert cli_main(argv) == 0
        assert "ready" in capsys.readouterr().out

        # one worker alone (in this process: no start-up to wait for), then two together
        t = work(
            bars,
            get_family("sma_cross"),
            study_group=study,
            storage=storage,
            n_trials=PER_WORKER,
            seed=0,
        )
        alone = {"trials": t.trials_run, "seconds": t.seconds}
        pair = [_worker(postgres_url, study, data, tmp_path) for _ in range(2)]
        together = [_finish(p) for p in pair]

        for k in range(FOLDS):
            trials = optuna.load_study(
                study_name=f"{study}-wf{k + 1}of{FOLDS}", storage=storage
            ).get_trials(deepcopy=False)
            numbers = [t.number for t in trials]
            assert len(trials) == 3 * PER_WORKER  # every trial of every worker, once
            assert sorted(numbers) == list(range(3 * PER_WORKER))  # none duplicated
            assert all(t.state.is_finished() for t in trials)
            assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}

        one = alone["trials"] / alone["seconds"]
        two = sum(w["trials"] for w in together) / max(w["seconds"] for w in together)
        speedup = two / one
        record_property("postgres_two_worker_speedup", round(speedup, 2))
        with capsys.disabled():
            print(
                f"\nPostgreSQL tune-worker: 1 worker {one:.1f} trials/s, "
                f"2 workers {two:.1f} trials/s together, speed-up {speedup:.2f}x"
            )
        assert speedup > 0
    finally:
        for k in range(FOLDS):
            with contextlib.suppress(KeyError):
                optuna.delete_study(study_name=f"{study}-wf{k + 1}of{FOLDS}", storage=storage)
