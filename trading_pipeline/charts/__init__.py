"""Interactive HTML charts (plotly) for people: a backtest's candles, indicators, signals,
trades and equity beside buy-and-hold."""
