"""Resources of the features assets: where derived tables live and the Fear & Greed source."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from trading_pipeline.settings import Settings


class FeatureStore(dg.ConfigurableResource):
    """Derived tables under ``<data_dir>/features`` (one Parquet file per series and month)."""

    data_dir: str = "data"

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / "features"

    def path(self, table: str, *parts: str) -> Path:
        """``root/<table>/<part>/…/data.parquet``."""
        return self.root.joinpath(table, *parts, "data.parquet")


class FearGreedSource(dg.ConfigurableResource):
    """alternative.me's Fear & Greed API (``TP_FNG_URL``)."""

    base_url: str = "https://api.alternative.me"
    timeout_seconds: float = 30.0


@dg.definitions
def resources() -> dg.Definitions:
    settings = Settings.from_env()
    return dg.Definitions(
        resources={
            "feature_store": FeatureStore(data_dir=str(settings.data_dir)),
            "fear_greed_source": FearGreedSource(base_url=settings.fng_url),
        }
    )
