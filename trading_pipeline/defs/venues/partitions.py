"""Venue series (static) × month partitions of the venue candles."""

from __future__ import annotations

import dagster as dg

from trading_pipeline.history.layout import Series

FIRST_MONTH = "2024-01-01"
# The series the venue assets keep current: BTC and ETH in USD on Coinbase; BTC on Binance US in
# USD (the arbitrage pair against Coinbase) and in USDT (the bridge to Binance's USDT books).
VENUE_SERIES: tuple[str, ...] = (
    "coinbase-BTCUSD-1h",
    "coinbase-ETHUSD-1h",
    "binanceus-BTCUSD-1h",
    "binanceus-BTCUSDT-1h",
)

venue_series_partitions = dg.StaticPartitionsDefinition(list(VENUE_SERIES))
venue_month_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH, end_offset=1)
venue_month = dg.MultiPartitionsDefinition(
    {"series": venue_series_partitions, "month": venue_month_partitions}
)


def venue_month_key(series_key: str, month: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"series": series_key, "month": month})


def split_venue_key(key: str) -> tuple[Series, int, int]:
    """``"2024-03-01|coinbase-BTCUSD-1h"`` → (series, 2024, 3)."""
    dims = venue_month.get_partition_key_from_str(key).keys_by_dimension
    year, month = (int(x) for x in dims["month"].split("-")[:2])
    return Series.parse(dims["series"]), year, month
