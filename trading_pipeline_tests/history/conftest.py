"""Fixtures for the fetcher tests: a generated Binance Vision tree served by the local mirror."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trading_pipeline.history.download import RetryPolicy
from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline_tests.fakes.faults import FaultyMirror, faulty_mirror

SPOT_1H = Series("spot", "BTCUSDT", "1h")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """An (initially empty) folder laid out like data.binance.vision."""
    root = tmp_path / "vision"
    root.mkdir()
    return root


@pytest.fixture
def mirror(tree: Path) -> Iterator[FaultyMirror]:
    """The mirror serving ``tree`` with 3-entry listing pages (to force pagination)."""
    with faulty_mirror(tree, page_size=3) as server:
        yield server


@pytest.fixture
def layout(tmp_path: Path) -> HistoryLayout:
    return HistoryLayout(tmp_path / "history")


@pytest.fixture
def no_sleep() -> RetryPolicy:
    """Retries without waiting; the delays asked for are recorded in ``.sleep.calls``."""
    calls: list[float] = []

    def sleep(seconds: float) -> None:
        calls.append(seconds)

    sleep.calls = calls  # type: ignore[attr-defined]
    return RetryPolicy(attempts=4, sleep=sleep)


def files_under(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative posix path → bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
