"""Binance Vision history: listing, verified download, conversion to partitioned Parquet."""
