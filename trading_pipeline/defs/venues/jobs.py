"""The venue candles job: the venue candles asset for any venue series × months."""

from __future__ import annotations

import dagster as dg

from trading_pipeline.defs.venues.assets import venue_candles

venue_candles_job = dg.define_asset_job(
    "venue_candles_job",
    selection=dg.AssetSelection.assets(venue_candles),
    description="Fetch venue candles (Coinbase, Binance US) for venue series × months.",
)
