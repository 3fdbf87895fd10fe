"""selector: see ARCHITECTURE.md."""
