"""strategies: see ARCHITECTURE.md."""
