"""Canonical market data: the kline schema, candle loading, quality checks, indicators."""
