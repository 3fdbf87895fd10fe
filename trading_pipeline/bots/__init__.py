"""bots: see ARCHITECTURE.md."""
