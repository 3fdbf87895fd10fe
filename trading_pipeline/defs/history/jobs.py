"""The history job: the three history assets and their checks, for any series × month."""

from __future__ import annotations

import dagster as dg

from trading_pipeline.defs.history.assets import kline_csv, klines, raw_zips

HISTORY_JOB = "history_job"

history_job = dg.define_asset_job(
    HISTORY_JOB,
    selection=dg.AssetSelection.assets(raw_zips, kline_csv, klines),
    description="Fetch, verify, extract and convert Binance Vision klines for series × months.",
)
