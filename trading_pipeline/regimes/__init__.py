"""regimes: see ARCHITECTURE.md."""
