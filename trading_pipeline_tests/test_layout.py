"""DataLayout: one place names every artifact; one precedence rule (flag > env > default)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from trading_pipeline.settings import resolve_layout


@pytest.mark.parametrize(
    ("env", "flags", "history", "bots"),
    [
        ({}, {}, "data/history", "data/bots"),
        ({"TP_DATA_DIR": "/d"}, {}, "/d/history", "/d/bots"),
        ({"TP_DATA_DIR": "/d", "TP_HISTORY_DIR": "/h"}, {}, "/h", "/d/bots"),
        (
            {"TP_HISTORY_DIR": "/h", "TP_BOTS_DIR": "/b"},
            {"data_dir": "/f"},
            "/f/history",
            "/f/bots",
        ),
        ({"TP_HISTORY_DIR": "/h"}, {"data_dir": "/f", "history_dir": "/fh"}, "/fh", "/f/bots"),
        ({"TP_DATA_DIR": "/d"}, {"bots_dir": "/fb"}, "/d/history", "/fb"),
    ],
)
def test_precedence_flag_over_env_over_default(env, flags, history, bots):
    layout = resolve_layout(env=env, **flags)
    assert layout.history_dir == Path(history)
    assert layout.bots_dir == Path(bots)


def test_uris_default_under_the_data_dir_and_env_overrides(tmp_path):
    layout = resolve_layout(env={}, data_dir=tmp_path)
    assert layout.mlflow_tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow/mlflow.db"
    assert layout.optuna_storage_url == f"journal:{tmp_path.resolve()}/optuna/studies.log"
    env = {"TP_MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "TP_OPTUNA_STORAGE": "sqlite:///x"}
    other = resolve_layout(env=env, data_dir=tmp_path)
    assert other.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert other.optuna_storage_url == "sqlite:///x"
    assert not tmp_path.joinpath("mlflow").exists()  # naming a path creates nothing


def test_every_artifact_is_under_its_root(tmp_path):
    layout = resolve_layout(env={}, data_dir=tmp_path)
    assert layout.ledger_path("bot1", "paper") == tmp_path / "bots/bot1/paper/ledger.sqlite"
    assert layout.replay_dir(date(2022, 5, 1), date(2022, 5, 31)).name == "20220501-20220531"
    assert layout.decisions_path == tmp_path / "selector/decisions.sqlite"
    assert layout.history.manifest_path == tmp_path / "history/manifest.json"
    names = [name for name, _ in layout.table()]
    assert len(names) == len(set(names))
