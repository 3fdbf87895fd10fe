"""Strategy discovery as assets: tuned results per family × series, the regime matrix, the top."""
