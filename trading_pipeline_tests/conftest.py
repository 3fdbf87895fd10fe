"""Shared fixtures: the real-data folder (skips cleanly when absent) and PostgreSQL detection."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

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
