"""The venues the pipeline knows, by name (no ccxt import: the fleet file is checked against it)."""

VENUES: tuple[str, ...] = ("binance", "binanceus", "coinbase")
