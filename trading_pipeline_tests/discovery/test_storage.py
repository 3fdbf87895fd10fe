"""Study storage: the embedded journal file, SQLite, PostgreSQL (skipped without a server)."""

from __future__ import annotations

import uuid
from pathlib import Path

import optuna
import pytest

from trading_pipeline.discovery.storage import BufferedJournal, add_trials, open_storage, redact
from trading_pipeline.errors import UserInputError

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _run(storage: optuna.storages.BaseStorage, name: str, n: int) -> optuna.Study:
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=1),
        direction="maximize",
    )
    study.optimize(lambda t: -((t.suggest_float("x", -5, 5) - 1.5) ** 2), n_trials=n)
    return study


def test_default_is_a_journal_file_under_the_data_dir_and_resumes(tmp_path: Path) -> None:
    _run(open_storage(None, data_dir=tmp_path), "s", 5)
    assert (tmp_path / "optuna" / "studies.log").stat().st_size > 0
    resumed = _run(
        open_storage(None, data_dir=tmp_path), "s", 5
    )  # a new process would see the same
    assert len(resumed.trials) == 10
    assert sorted(t.number for t in resumed.trials) == list(range(10))


@pytest.mark.slow  # creates an Optuna SQLite storage (schema migrations)
def test_sqlite_url(tmp_path: Path) -> None:
    study = _run(open_storage(f"sqlite:///{tmp_path / 'o.db'}", data_dir=tmp_path), "s", 3)
    assert len(study.trials) == 3 and (tmp_path / "o.db").exists()


@pytest.mark.slow  # a PostgreSQL server
def test_postgres_url(postgres_url: str, tmp_path: Path) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    study = _run(open_storage(postgres_url, data_dir=tmp_path), name, 3)
    assert len(study.trials) == 3
    optuna.delete_study(study_name=name, storage=open_storage(postgres_url, data_dir=tmp_path))


def test_unknown_scheme_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="unsupported study storage"):
        open_storage("mysql://localhost/optuna", data_dir=tmp_path)  # redis:// is a kind now
    assert not (tmp_path / "optuna").exists()


def test_redact_hides_passwords() -> None:
    assert redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def _finished(n: int, offset: float = 0.0) -> list[optuna.trial.FrozenTrial]:
    dist = {"x": optuna.distributions.FloatDistribution(-5, 5)}
    out = []
    for i in range(n):
        x = ((i * 0.37 + offset) % 10) - 5
        out.append(
            optuna.trial.create_trial(
                params={"x": x},
                distributions=dist,
                value=-(x**2),
                intermediate_values={0: -x, 1: -(x**2)},
            )
        )
    return out


def _view(trials: list[optuna.trial.FrozenTrial]) -> list[tuple]:
    return [(t.number, t.params, t.state, t.value, t.intermediate_values) for t in trials]


def test_journal_adds_a_batch_of_trials_in_one_append(tmp_path: Path) -> None:
    """k finished trials cost one journal append (one lock, one fsync), not k; a new storage
    object (another process) reads them back numbered in order, equal to Optuna's own adds."""
    url = f"journal:{tmp_path / 'j.log'}"
    storage = open_storage(url, data_dir=tmp_path)
    backend = storage._backend
    assert isinstance(backend, BufferedJournal)
    appends: list[int] = []
    inner_append = backend.inner.append_logs
    backend.inner.append_logs = lambda logs: (appends.append(len(logs)), inner_append(logs))[1]
    study = optuna.create_study(storage=storage, study_name="b", direction="maximize")
    appends.clear()
    add_trials(study, _finished(40))
    # the first trial a storage object creates is read back at once (Optuna needs its id)
    assert appends == [1, 39]
    appends.clear()
    add_trials(study, _finished(25, offset=0.1))
    assert appends == [25]
    ref = optuna.create_study(direction="maximize")
    ref.add_trials(_finished(40) + _finished(25, offset=0.1))
    fresh = optuna.load_study(study_name="b", storage=open_storage(url, data_dir=tmp_path))
    assert _view(fresh.get_trials()) == _view(ref.get_trials())
    assert _view(study.get_trials()) == _view(ref.get_trials())
    # the study goes on as usual afterwards (ask/tell write at once)
    _run(open_storage(url, data_dir=tmp_path), "b", 3)
    assert [t.number for t in fresh.get_trials()] == list(range(68))


def test_two_workers_interleaving_batches_get_unique_numbers(tmp_path: Path) -> None:
    """Two storage objects on one journal file (two workers): batches and single trials
    interleave, every trial lands once, numbered 0..n-1 in the order written."""
    url = f"journal:{tmp_path / 'j.log'}"
    a = optuna.create_study(
        storage=open_storage(url, data_dir=tmp_path), study_name="w", direction="maximize"
    )
    b = optuna.load_study(study_name="w", storage=open_storage(url, data_dir=tmp_path))
    add_trials(a, _finished(10))
    add_trials(b, _finished(7, offset=0.2))
    b.optimize(lambda t: t.suggest_float("x", -5, 5), n_trials=2)
    add_trials(a, _finished(5, offset=0.4))
    add_trials(b, _finished(6, offset=0.6))
    want = [t.value for t in _finished(10)] + [t.value for t in _finished(7, offset=0.2)]
    for study in (a, b):
        trials = study.get_trials()
        assert [t.number for t in trials] == list(range(30))
        assert [t.value for t in trials[:17]] == want
    assert [t.value for t in a.get_trials()[19:24]] == [t.value for t in _finished(5, 0.4)]


def test_a_failed_batch_keeps_what_was_added(tmp_path: Path) -> None:
    """An error inside a batch (an invalid trial) still writes the trials added before it."""
    url = f"journal:{tmp_path / 'j.log'}"
    study = optuna.create_study(
        storage=open_storage(url, data_dir=tmp_path), study_name="f", direction="maximize"
    )
    bad = optuna.trial.create_trial(params={}, distributions={}, value=1.0)
    bad.values = [1.0, 2.0]  # two objectives in a one-objective study: refused by add_trial
    with pytest.raises(ValueError, match="number of objectives"):
        add_trials(study, [*_finished(4), bad])
    kept = optuna.load_study(study_name="f", storage=open_storage(url, data_dir=tmp_path))
    assert _view(kept.get_trials()) == _view(study.get_trials())
    assert len(kept.get_trials()) == 4
