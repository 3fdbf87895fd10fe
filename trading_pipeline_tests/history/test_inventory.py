"""``list-data``: the store's series from its manifest, holes and gaps included."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from trading_pipeline.cli import main
from trading_pipeline.history.inventory import inventory, months_from_to
from trading_pipeline.history.layout import HistoryLayout
from trading_pipeline.history.manifest import Manifest
from trading_pipeline_tests.fakes.bars import make_bars
from trading_pipeline_tests.fakes.store import write_store


@pytest.fixture
def store(tmp_path: Path) -> Path:
    history = tmp_path / "history"
    btc = make_bars(24 * 121, start=datetime(2024, 1, 1, tzinfo=UTC))  # Jan–Apr 2024
    month = btc["open_time"].dt.month()
    # March is absent (a hole) and six hours of January are missing (a gap)
    btc = btc.filter((month != 3) & ~pl.col("open_time").is_between(
        datetime(2024, 1, 10, tzinfo=UTC), datetime(2024, 1, 10, 5, tzinfo=UTC)))  # fmt: skip
    write_store(history, "spot-BTCUSDT-1h", btc, record=True)
    eth = make_bars(24 * 30, start=datetime(2024, 4, 1, tzinfo=UTC), seed=3)
    write_store(history, "spot-ETHUSDT-1h", eth, record=True)
    return history


def test_inventory_counts_months_holes_rows_and_gaps(store: Path) -> None:
    rows = {s.key: s for s in inventory(Manifest(HistoryLayout(store).manifest_path).load())}
    assert sorted(rows) == ["spot-BTCUSDT-1h", "spot-ETHUSDT-1h"]
    btc = rows["spot-BTCUSDT-1h"]
    assert btc.months == ["2024-01", "2024-02", "2024-04"]
    assert btc.missing_months == ["2024-03"]
    assert (btc.gaps, btc.missing_bars) == (1, 6)
    frames = [pl.read_parquet(p) for p in sorted(store.rglob("symbol=BTCUSDT/**/data.parquet"))]
    assert btc.rows == sum(f.height for f in frames)
    assert btc.first_bar is not None and btc.first_bar.startswith("2024-01-01T00:00")
    assert btc.last_bar is not None and btc.last_bar.startswith("2024-04-30T23:00")
    assert rows["spot-ETHUSDT-1h"].missing_months == []


def test_months_from_to_crosses_years() -> None:
    assert months_from_to("2023-11", "2024-02") == ["2023-11", "2023-12", "2024-01", "2024-02"]


def test_list_data_prints_the_table_and_json(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list-data", "--history-dir", str(store)]) == 0
    out = capsys.readouterr().out
    assert "spot-BTCUSDT-1h" in out and "spot-ETHUSDT-1h" in out and "2024-03" in out
    assert main(["list-data", "--history-dir", str(store), "--symbol", "ETHUSDT", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["series"] for s in doc["series"]] == ["spot-ETHUSDT-1h"]
    assert doc["series"][0]["months"] == 1 and doc["series"][0]["rows"] == 720


def test_list_data_on_an_empty_store_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list-data", "--history-dir", str(tmp_path / "none")]) == 0
    assert "no series" in capsys.readouterr().out
    assert not (tmp_path / "none").exists()
