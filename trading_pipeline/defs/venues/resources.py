"""The ``VenueExchanges`` resource: how each ccxt venue is reached (a mirror, a fake, or real)."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from trading_pipeline.settings import Settings
from trading_pipeline.venues.exchange import make_exchange


class VenueExchanges(dg.ConfigurableResource):
    """How to reach each venue: an override URL (``TP_COINBASE_URL``/``TP_BINANCEUS_URL``),
    else the real host."""

    coinbase_url: str | None = Field(
        default=None, description="Coinbase override URL (TP_COINBASE_URL; unset: the real host)"
    )
    binanceus_url: str | None = Field(
        default=None,
        description="Binance US override URL (TP_BINANCEUS_URL; unset: the real host)",
    )
    rate_limit_ms: int | None = Field(
        default=None, description="ms between requests (unset: ccxt's own pacing for the venue)"
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> VenueExchanges:
        return cls(
            coinbase_url=settings.venue_url("coinbase"),
            binanceus_url=settings.venue_url("binanceus"),
        )

    def exchange(self, venue: str) -> Any:
        url = {"coinbase": self.coinbase_url, "binanceus": self.binanceus_url}.get(venue)
        exchange = make_exchange(venue, base_url=url)
        if self.rate_limit_ms is not None:
            exchange.rateLimit = self.rate_limit_ms
        return exchange
