"""Binance Vision history as partitioned assets: raw zips → CSV → Parquet klines."""
