"""backtest: see ARCHITECTURE.md."""
