"""The ``HistoryStore`` resource: where history lives, where it comes from, which series."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from trading_pipeline.history.layout import HistoryLayout, Series
from trading_pipeline.history.manifest import Manifest, ManifestEntry
from trading_pipeline.settings import Settings


class HistoryStore(dg.ConfigurableResource):
    """The history store under ``TP_HISTORY_DIR`` and the Binance Vision endpoints it mirrors."""

    data_dir: str = "data"
    history_dir: str | None = None
    vision_url: str
    listing_url: str
    universe: list[str]
    market: str = "spot"
    interval: str = "1h"
    start: str = "2019-01-01"
    concurrency: int = 4

    @classmethod
    def from_settings(cls, settings: Settings) -> HistoryStore:
        return cls(
            data_dir=str(settings.data_dir),
            history_dir=str(settings.history_dir),
            vision_url=settings.vision_url,
            listing_url=settings.listing_url,
            universe=list(settings.universe),
            market=settings.market,
            interval=settings.interval,
            start=settings.start,
            concurrency=settings.concurrency,
        )

    @property
    def root(self) -> Path:
        return Path(self.history_dir) if self.history_dir else Path(self.data_dir) / "history"

    def layout(self) -> HistoryLayout:
        return HistoryLayout(self.root)

    def series(self) -> list[Series]:
        """The configured universe as series of the configured market and interval."""
        return [Series(self.market, s.strip().upper(), self.interval) for s in self.universe]

    def series_keys(self) -> list[str]:
        return [s.key for s in self.series()]

    def manifest_entries(self) -> dict[str, ManifestEntry]:
        return Manifest(self.layout().manifest_path).load()
