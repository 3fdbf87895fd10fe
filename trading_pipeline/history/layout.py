"""Where history files live under ``TP_HISTORY_DIR``.

``raw/`` mirrors Binance's own paths (``raw/data/spot/monthly/klines/BTCUSDT/1h/…zip``),
``csv/`` holds the extracted CSVs on the same relative paths, ``parquet/`` is hive-partitioned
``market=…/symbol=…/interval=…/year=YYYY/month=MM/data.parquet`` and ``manifest.json`` the inventory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Series:
    """One kline series: a market, a symbol and an interval (``spot-BTCUSDT-1h`` as a key)."""

    market: str
    symbol: str
    interval: str

    @property
    def key(self) -> str:
        return f"{self.market}-{self.symbol}-{self.interval}"

    @classmethod
    def parse(cls, key: str) -> Series:
        parts = key.split("-")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"series key must be MARKET-SYMBOL-INTERVAL, got {key!r}")
        return cls(parts[0], parts[1], parts[2])


@dataclass(frozen=True)
class HistoryLayout:
    """Paths of every kind of history file under one root."""

    root: Path

    @property
    def raw_dir(self) -> Path:
        return self.root / "raw"

    @property
    def csv_dir(self) -> Path:
        return self.root / "csv"

    @property
    def parquet_dir(self) -> Path:
        return self.root / "parquet"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def raw_path(self, key: str) -> Path:
        """Local path of a remote object key such as ``data/spot/monthly/klines/…/X.zip``."""
        return self.raw_dir / key

    def csv_path(self, key: str) -> Path:
        """The extracted CSV for a zip key (same relative path, ``.csv`` suffix)."""
        return (self.csv_dir / key).with_suffix(".csv")

    def series_dir(self, series: Series) -> Path:
        return (
            self.parquet_dir
            / f"market={series.market}"
            / f"symbol={series.symbol}"
            / f"interval={series.interval}"
        )

    def parquet_path(self, series: Series, year: int, month: int) -> Path:
        return self.series_dir(series) / f"year={year:04d}" / f"month={month:02d}" / "data.parquet"
