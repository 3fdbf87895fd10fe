"""The Dagster layer: thin assets, checks, schedules, sensors and resources over the core."""
