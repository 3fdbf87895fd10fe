"""discovery: see ARCHITECTURE.md."""
