"""The stored regime labels read back per series: every stored month, in time order, and
nothing of another series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from trading_pipeline.regimes.stored import labels_dir, load_labels, stored_months


def _month(root: Path, series: str, month: str, start: datetime, regimes: list[str]) -> None:
    path = labels_dir(root, series) / f"month={month}" / "data.parquet"
    path.parent.mkdir(parents=True)
    times = [start + timedelta(hours=i) for i in range(len(regimes))]
    pl.DataFrame({"open_time": times, "regime": regimes}).write_parquet(path)


def test_every_stored_month_of_the_series_in_time_order(tmp_path: Path) -> None:
    feb = datetime(2024, 2, 1, tzinfo=UTC)
    jan = datetime(2024, 1, 1, tzinfo=UTC)
    _month(tmp_path, "spot-BTCUSDT-1h", "2024-02", feb, ["bull", "bear"])
    _month(tmp_path, "spot-BTCUSDT-1h", "2024-01", jan, ["sideways"])
    _month(tmp_path, "spot-ETHUSDT-1h", "2024-01", jan, ["bear"])
    assert stored_months(tmp_path, "spot-BTCUSDT-1h") == ["2024-01", "2024-02"]
    labels = load_labels(tmp_path, "spot-BTCUSDT-1h")
    assert labels is not None
    assert labels["regime"].to_list() == ["sideways", "bull", "bear"]
    assert labels["open_time"].is_sorted()
    assert load_labels(tmp_path, "spot-BNBUSDT-1h") is None
