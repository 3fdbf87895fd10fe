"""The strategy selector as assets (training, model) and the 5-minute decision sensor."""
