"""The ``HistorySource`` resource: where Binance Vision is reached and which series to keep:
the configured universe (``series``) and, with ``fleet_series``, every bot's own series too
(``series_in_force``, what the history sensor registers and the chain runs)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from trading_pipeline.history.layout import Series
from trading_pipeline.settings import Settings


class HistorySource(dg.ConfigurableResource):
    """The Binance Vision endpoints (``TP_VISION_URL``, a mirror) and the universe they feed."""

    vision_url: str = Field(description="Binance Vision files, or a mirror (TP_VISION_URL)")
    listing_url: str = Field(description="the S3 listing of those files (TP_VISION_LISTING_URL)")
    universe: list[str] = Field(description="symbols fetched (TP_UNIVERSE)")
    market: str = Field(default="spot", description="Binance Vision market")
    interval: str = Field(default="1h", description="kline interval")
    start: str = Field(default="2019-01-01", description="first month fetched, YYYY-MM-DD")
    concurrency: int = Field(default=4, description="downloads in flight")
    fleet_series: bool = Field(
        default=False,
        description="also every bot's (symbol, interval) from the fleet in force (TP_FLEET_SERIES)",
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> HistorySource:
        return cls(
            vision_url=settings.vision_url,
            listing_url=settings.listing_url,
            universe=list(settings.universe),
            market=settings.market,
            interval=settings.interval,
            start=settings.start,
            concurrency=settings.concurrency,
            fleet_series=settings.fleet_series,
        )

    def series(self) -> list[Series]:
        """The configured universe as series of the configured market and interval."""
        return [Series(self.market, s.strip().upper(), self.interval) for s in self.universe]

    def series_in_force(self) -> list[Series]:
        """The configured universe, then (``fleet_series``) every bot's series of the fleet in
        force not already in it; bot4's venue-qualified symbols are left to the venues assets."""
        # lazy: the fleet file is read when the series are asked for (TP_FLEET_FILE may change)
        from trading_pipeline.bots.data_series import series_in_force
        from trading_pipeline.bots.spec import current_fleet

        bots = current_fleet().bots if self.fleet_series else ()
        return series_in_force(self.universe, self.interval, market=self.market, bots=bots)

    def series_keys(self) -> list[str]:
        """Keys of :meth:`series_in_force`: the partitions the history sensor registers."""
        return [s.key for s in self.series_in_force()]
