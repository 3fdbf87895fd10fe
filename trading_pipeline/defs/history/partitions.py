"""Series (dynamic, grows from settings) × month partitions of the history assets."""

from __future__ import annotations

from datetime import date

import dagster as dg

from trading_pipeline.history.layout import Series

FIRST_MONTH = "2017-08-01"  # Binance Vision's first spot klines

series_partitions = dg.DynamicPartitionsDefinition(name="series")
month_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH, end_offset=1)
series_month = dg.MultiPartitionsDefinition(
    {"series": series_partitions, "month": month_partitions}
)


def month_key(day: date) -> str:
    """The month partition holding ``day`` (``2024-03-01``)."""
    return f"{day.year:04d}-{day.month:02d}-01"


def series_month_key(series_key: str, month: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"series": series_key, "month": month})


def split_key(key: str) -> tuple[Series, int, int]:
    """``"2024-03-01|spot-BTCUSDT-1h"`` → (series, 2024, 3)."""
    dims = series_month.get_partition_key_from_str(key).keys_by_dimension
    year, month = (int(x) for x in dims["month"].split("-")[:2])
    return Series.parse(dims["series"]), year, month


def previous_month(day: date) -> date:
    """The 1st of the month before ``day``'s month."""
    return date(day.year - 1, 12, 1) if day.month == 1 else date(day.year, day.month - 1, 1)
