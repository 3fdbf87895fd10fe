"""Features, regimes, cross-asset correlation and sentiment as assets (downstream of klines)."""
