"""Study storage: the embedded journal file, SQLite, PostgreSQL (skipped without a server)."""

from __future__ import annotations

import uuid
from pathlib import Path

import optuna
import pytest

from trading_pipeline.discovery.storage import open_storage, redact
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
        open_storage("redis://localhost", data_dir=tmp_path)
    assert not (tmp_path / "optuna").exists()


def test_redact_hides_passwords() -> None:
    assert redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
