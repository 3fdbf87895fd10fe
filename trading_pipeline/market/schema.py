"""The canonical kline schema every stage reads and writes.

Binance Vision's 12 CSV columns map onto these names; the trailing ``ignore`` column is dropped.
Times are timezone-aware UTC datetimes (microsecond precision), prices and volumes float64.
"""

from __future__ import annotations

import polars as pl

UTC_US = pl.Datetime("us", "UTC")

KLINE_SCHEMA: dict[str, pl.DataType] = {
    "open_time": UTC_US,
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "close_time": UTC_US,
    "quote_volume": pl.Float64(),
    "trades": pl.Int64(),
    "taker_buy_base_volume": pl.Float64(),
    "taker_buy_quote_volume": pl.Float64(),
}
KLINE_COLUMNS: tuple[str, ...] = tuple(KLINE_SCHEMA)
OHLCV: tuple[str, ...] = ("open", "high", "low", "close", "volume")

# Binance kline interval spellings and their length in milliseconds (1mo is calendar-based:
# the value here is a nominal 30 days, used only for annualisation and grid checks are skipped).
INTERVAL_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1mo": 2_592_000_000,
}
DAILY_INTERVALS: frozenset[str] = frozenset(i for i in INTERVAL_MS if i not in {"3d", "1w", "1mo"})
MARKETS: tuple[str, ...] = ("spot", "um", "cm")


def empty_klines() -> pl.DataFrame:
    """A zero-row frame with the canonical schema."""
    return pl.DataFrame(schema=KLINE_SCHEMA)


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Select and cast ``df`` to the canonical schema; missing columns become nulls."""
    exprs = [
        (pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in KLINE_SCHEMA.items()
    ]
    return df.select(exprs)


def bars_per_year(interval: str) -> float:
    """How many bars of ``interval`` a year of 24/7 trading holds (for annualisation)."""
    if interval not in INTERVAL_MS:
        raise ValueError(f"unknown interval {interval!r}")
    return 365.0 * 86_400_000 / INTERVAL_MS[interval]
