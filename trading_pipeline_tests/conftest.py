"""Shared fixtures: the real-data folder (skips cleanly when absent), PostgreSQL detection, the
seeded bar factory and the history-store writer of the test kit (``trading_pipeline_tests.fakes``)."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline_tests.fakes.store import write_frames

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

REAL_DATA = Path(
    os.environ.get("TP_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real")
)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data/real`` (or ``$TP_REAL_DATA``); the test is skipped when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder absent: {REAL_DATA}")
    return REAL_DATA


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL on 127.0.0.1:5432; the test is skipped when no server answers."""
    url = os.environ.get("TP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    if not _port_open("127.0.0.1", 5432):
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    return url


@pytest.fixture(scope="session")
def make_bars() -> Callable[..., pl.DataFrame]:
    """The seeded bar factory: ``make_bars(n, interval=, start=, seed=, trend=…)``."""
    # imported here: the factory pulls in the regimes package (~3 s), which most tests never need
    from trading_pipeline_tests.fakes.bars import make_bars as factory

    return factory


@pytest.fixture
def store_factory(tmp_path: Path) -> Callable[[Mapping[str, pl.DataFrame]], Path]:
    """Write ``symbol → bars`` (spot, 1h) into ``tmp_path/data/history``; return the data dir."""

    def make(frames: Mapping[str, pl.DataFrame]) -> Path:
        write_frames(tmp_path / "data" / "history", frames)
        return tmp_path / "data"

    return make


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The layering test imports every core package in fresh subprocesses: slow tier. (Marked here
    because test_layering.py is being rewritten elsewhere; drop this when it marks itself.)"""
    for item in items:
        if item.path.name == "test_layering.py":
            item.add_marker(pytest.mark.slow)


_SLOW_MODULE = re.compile(r"^pytestmark = pytest\.mark\.slow\b", re.MULTILINE)


def _all_slow(path: Path) -> bool:
    if path.is_dir():
        modules = list(path.rglob("test_*.py"))
        return bool(modules) and all(_all_slow(m) for m in modules)
    return bool(_SLOW_MODULE.search(path.read_text(encoding="utf-8")))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under ``-m "not slow"`` (``make test-fast``) a module marked slow as a whole, or a folder
    holding only such modules, is not even imported: collecting it would only import Dagster,
    MLflow and ccxt to deselect every test in it."""
    if config.getoption("markexpr", "") != "not slow":
        return None
    name = collection_path.name
    if (collection_path.is_dir() and name != "fakes") or (
        name.startswith("test_") and name.endswith(".py")
    ):
        return _all_slow(collection_path) or None
    return None


@pytest.fixture(autouse=True)
def _no_dagster_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """``make`` exports DAGSTER_HOME (the repo's instance): a test that wants an instance names
    its own, so that ``import freqtrade``/``venue fetch`` in tests never record into the repo's."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
